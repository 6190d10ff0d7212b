"""X-Forwarded-For/-Host/-Proto believed only from PORTAL_TRUSTED_PROXIES (portal/forwarded.py):
the client address every limit and log uses, the host a team's domain is recognised by, the
scheme in the token realm; from any other peer the headers change nothing."""

from __future__ import annotations

import ipaddress
import os
import subprocess
import sys
from pathlib import Path

import pytest

from accounts.models import AuditEvent
from delivery.models import Download
from licenses import services as licenses
from portal import forwarded
from tests import factories
from tests.hosts.conftest import address, basic, client

pytestmark = pytest.mark.django_db

FRONT = "192.0.2.80"  # the operator's nginx
ACME = "proxy.acme.test"


@pytest.fixture(autouse=True)
def trusted(settings):
    settings.PORTAL_TRUSTED_PROXIES = [ipaddress.ip_network(FRONT), ipaddress.ip_network("10.9.0.0/16")]


@pytest.fixture
def acme(actor, team, make_domain):
    app = factories.make_app(team, "acme-api")
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    make_domain(team, ACME)
    return license_id


def test_a_forged_forwarded_host_from_an_untrusted_peer_changes_nothing(acme):
    forged = {"HTTP_X_FORWARDED_HOST": ACME, "HTTP_X_FORWARDED_PROTO": "https"}
    answer = client(**forged).get("/v2/")
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="http://testserver/v2/token"')
    # Naming another team's domain from outside does not make the portal's host a team's.
    assert client(**forged).get("/v2/", HTTP_AUTHORIZATION=basic(acme)).status_code == 200
    # An unknown Host stays unknown, whatever X-Forwarded-Host says.
    assert client("nobody.example.test", **forged).get("/v2/").status_code == 404


def test_a_trusted_proxy_names_the_host_and_the_scheme_of_the_realm(acme):
    via_front = client(REMOTE_ADDR=FRONT, HTTP_X_FORWARDED_HOST=ACME, HTTP_X_FORWARDED_PROTO="https")
    answer = via_front.get("/v2/", HTTP_HOST="127.0.0.1:8000")
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == f'Bearer realm="https://{ACME}/v2/token",service="portal-proxy"'
    assert via_front.get("/v2/", HTTP_HOST="127.0.0.1:8000", HTTP_AUTHORIZATION=basic(acme)).status_code == 200


def test_the_client_address_is_the_forwarded_one_only_from_a_trusted_proxy(admin_api, customer_license):
    """The audit log's address and the download log's (the rate limits: the test below)."""
    tokens = "/api/v1/tokens/"
    # The client, then an inner hop that is itself trusted.
    admin_api.post(
        tokens, {"name": "ci"}, format="json", REMOTE_ADDR=FRONT, HTTP_X_FORWARDED_FOR="198.51.100.7, 10.9.1.2"
    )
    admin_api.post(
        tokens, {"name": "ci2"}, format="json", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="198.51.100.99"
    )
    addresses = AuditEvent.objects.filter(action="token.create").order_by("pk").values_list("address", flat=True)
    assert list(addresses)[-2:] == ["198.51.100.7", "203.0.113.5"]

    license_id = customer_license.license_id
    for peer, header, expected in (
        (FRONT, "198.51.100.8", "198.51.100.8"),
        ("203.0.113.6", "198.51.100.9", "203.0.113.6"),
    ):
        client(REMOTE_ADDR=peer, HTTP_X_FORWARDED_FOR=header).get(
            "/customer/v1/install-kit.tar.gz", HTTP_AUTHORIZATION=basic(license_id)
        )
        assert Download.objects.order_by("-pk").values_list("address", flat=True).first() == expected


def test_the_forwarded_client_is_the_rightmost_untrusted_hop():
    assert forwarded.forwarded_client("198.51.100.1", FRONT) == "198.51.100.1"
    assert forwarded.forwarded_client("6.6.6.6, 198.51.100.1, 10.9.3.4", FRONT) == "198.51.100.1"
    assert forwarded.forwarded_client("10.9.3.4, 10.9.3.5", FRONT) == "10.9.3.4"
    assert forwarded.forwarded_client("not-an-address", FRONT) == FRONT
    assert forwarded.forwarded_client("[2001:db8::1]", FRONT) == "2001:db8::1"


def test_guesses_from_behind_one_proxy_are_limited_per_forwarded_client(settings, acme, monkeypatch):
    """The per-address limit counts the forwarded client, not the proxy all clients share."""
    from delivery import customer_auth

    monkeypatch.setattr(customer_auth, "RATE_PER_ADDRESS", 2)
    guesser, bystander = address(), address()

    def guess(who: str):
        return client(REMOTE_ADDR=FRONT, HTTP_X_FORWARDED_FOR=who).get("/v2/", HTTP_AUTHORIZATION=basic("guess"))

    assert [guess(guesser).status_code for _ in range(3)] == [401, 401, 429]
    assert guess(bystander).status_code == 401  # another client behind the same proxy


def _settings_in_subprocess(env: dict[str, str], expression: str) -> str:
    root = Path(__file__).resolve().parent.parent.parent
    code = f"import django; django.setup(); from django.conf import settings; print(({expression}))"
    base = {k: v for k, v in os.environ.items() if k not in ("SECURE_PROXY_SSL_HEADER", "PORTAL_TRUSTED_PROXIES")}
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env={**base, "DJANGO_SETTINGS_MODULE": "portal.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_old_switch_still_believes_forwarded_proto_until_trusted_proxies_are_named():
    expression = "settings.PORTAL_FORWARDED_PROTO_FROM_ANYONE, settings.SECURE_PROXY_SSL_HEADER"
    assert _settings_in_subprocess({"SECURE_PROXY_SSL_HEADER": "true"}, expression) == (
        "(True, ('PORTAL_FORWARDED_PROTO', 'https'))"
    )
    named = {"SECURE_PROXY_SSL_HEADER": "true", "PORTAL_TRUSTED_PROXIES": "10.0.0.1"}
    assert _settings_in_subprocess(named, expression).startswith("(False,")
    assert _settings_in_subprocess({}, expression).startswith("(False,")


def test_the_old_switch_believes_forwarded_proto_from_anyone_but_not_forwarded_host(settings, acme):
    settings.PORTAL_TRUSTED_PROXIES = []
    settings.PORTAL_FORWARDED_PROTO_FROM_ANYONE = True
    answer = client("testserver", HTTP_X_FORWARDED_PROTO="https", HTTP_X_FORWARDED_HOST=ACME).get("/v2/")
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="https://testserver/v2/token"')
    settings.PORTAL_FORWARDED_PROTO_FROM_ANYONE = False
    answer = client("testserver", HTTP_X_FORWARDED_PROTO="https").get("/v2/")
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="http://testserver/v2/token"')


def test_a_bad_trusted_proxy_setting_names_the_setting_and_the_value():
    root = Path(__file__).resolve().parent.parent.parent
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=root,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings", "PORTAL_TRUSTED_PROXIES": "10.0.0.1,nginx"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "PORTAL_TRUSTED_PROXIES: 'nginx' is not a CIDR network" in done.stderr
