"""Refused pulls of a known license reach its pull log with their reason, as the license page
promises ("refused ones too"), whether refused at the token service or at the proxy; a
license ID nobody has is nobody's to log. The success path asks the database nothing more.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import timedelta

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.test import RequestFactory
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from delivery import routing
from delivery.proxy import gate
from licenses import services as licenses
from licenses.models import License, PullEvent
from portal import registry_tokens
from registries import services as registries
from tests import factories
from tests.proxy.conftest import assert_oci_error, basic, bearer, get_token, proxy_name, skopeo, wait_for
from tests.realparts.loopback import Reply

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MANIFEST = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": []}).encode()
LAYER = "sha256:" + hashlib.sha256(b"layer").hexdigest()


def _rows() -> set[tuple[str, str, str, int, str]]:
    """(customer, kind, repository's last part, status, reason) of every pull-log row."""
    return {
        (e.license.customer_name, e.kind, e.repository.rsplit("/", 1)[-1], e.status, e.reason)
        for e in PullEvent.objects.select_related("license")
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_refused_pulls_of_known_licenses_are_in_their_pull_log_with_the_reason(
    loopback_server, portal_server, actor, team, admin_client
):
    up = loopback_server()
    up.on("/v2/acme/api/manifests/1.0.0", Reply(200, {"Content-Type": OCI_MANIFEST}, MANIFEST))
    app_a = factories.make_app(team, "app-a")
    app_b = factories.make_app(team, "app-b")
    registries.registry_create(
        actor=actor, provider="other", endpoint=up.url, username="vendor", password="secret", skip_validation=True
    )
    host = up.netloc.replace(":", "__")
    licenses.app_set_repository_rules(actor=actor, app=app_a, rules=[f"{host}/acme/api"])
    ids = {}
    made = {}
    for customer, app in (("Active", app_a), ("Revoked", app_a), ("Expired", app_a), ("Other", app_b)):
        made[customer], ids[customer] = licenses.license_create(actor=actor, app=app, customer_name=customer)
    base = portal_server.url
    api = proxy_name("app-a", up.netloc, "acme/api")
    secret = proxy_name("app-a", up.netloc, "acme/secret")
    http = httpx.Client(timeout=10)
    # The control: a granted pull, logged as before.
    assert http.get(f"{base}/v2/{api}/manifests/1.0.0", headers=basic(ids["Active"])).status_code == 200

    # Revoked: a token issued before, Basic straight to the proxy, and a real client.
    early_token = get_token(base, ids["Revoked"], api)
    licenses.license_revoke(actor=actor, license=made["Revoked"])
    assert_oci_error(http.get(f"{base}/v2/{api}/blobs/{LAYER}", headers=bearer(early_token)), 401, "UNAUTHORIZED")
    assert_oci_error(http.get(f"{base}/v2/{api}/manifests/1.0.0", headers=basic(ids["Revoked"])), 401)
    revoked_id = ids["Revoked"]
    inspect = skopeo(
        "inspect", "--raw", "--tls-verify=false", "--creds", f"{revoked_id}:{revoked_id}",
        f"docker://{portal_server.netloc}/{api}:1.0.0", timeout=60,
    )  # fmt: skip
    assert inspect.returncode != 0 and "unauthorized" in inspect.stderr.lower(), inspect.stderr

    # Expired: its tag list, and a login that asks for no scope (as `docker login` does).
    License.objects.filter(pk=made["Expired"].pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_oci_error(http.get(f"{base}/v2/{api}/tags/list", headers=basic(ids["Expired"])), 401)
    assert_oci_error(http.get(f"{base}/v2/token", headers=basic(ids["Expired"])), 401, "UNAUTHORIZED")

    # Valid licenses asking for what they may not have: another app, a repository outside the rules.
    assert_oci_error(http.get(f"{base}/v2/{api}/manifests/1.0.0", headers=basic(ids["Other"])), 403, "DENIED")
    assert registry_tokens.verify(get_token(base, ids["Other"], api), audience=settings.PROXY_SERVICE)["access"] == []
    assert_oci_error(http.get(f"{base}/v2/{secret}/manifests/1.0.0", headers=basic(ids["Active"])), 403, "DENIED")
    assert (
        registry_tokens.verify(get_token(base, ids["Active"], secret), audience=settings.PROXY_SERVICE)["access"] == []
    )

    # Nobody's license ID: refused, and nowhere to log it.
    assert_oci_error(http.get(f"{base}/v2/{api}/manifests/1.0.0", headers=basic("not-a-license-id")), 401)
    assert_oci_error(http.get(f"{base}/v2/token", headers=basic("not-a-license-id")), 401)
    http.close()

    expected = {
        ("Active", "manifest", "api", 200, ""),
        ("Revoked", "blob", "api", 401, "license revoked"),
        ("Revoked", "manifest", "api", 401, "license revoked"),
        ("Revoked", "token", "api", 401, "license revoked"),  # skopeo, refused at the token service
        ("Expired", "tags", "api", 401, "license expired"),
        ("Expired", "login", "", 401, "license expired"),
        ("Other", "manifest", "api", 403, "other app"),
        ("Other", "token", "api", 403, "other app"),
        ("Active", "manifest", "secret", 403, "repository not allowed"),
        ("Active", "token", "secret", 403, "repository not allowed"),
    }
    assert wait_for(lambda: _rows() >= expected, timeout=5), _rows()
    assert _rows() == expected
    assert set(PullEvent.objects.values_list("app_id", flat=True)) == {app_a.pk, app_b.pk}

    # The license page shows them.
    page = admin_client.get(reverse("delivery:license-detail", args=[made["Revoked"].pk]))
    assert page.status_code == 200 and page.content.count(b"license revoked") >= 3


@pytest.mark.django_db
def test_a_granted_request_asks_the_database_nothing_more_than_before(actor, team):
    """The refusal bookkeeping costs the hot path nothing: after the first request has warmed
    the caches, Basic asks the database once (the license look-up), a token not at all."""
    app = factories.make_app(team, "app-a")
    registry = registries.registry_create(
        actor=actor, provider="other", endpoint="http://127.0.0.1:5000", username="vendor", password="secret",
        skip_validation=True,
    )  # fmt: skip
    factories.make_release(actor, app, [(registry.name, "acme/api", "1.0.0")])  # checked per request, kept
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    name = proxy_name("app-a", "127.0.0.1:5000", "acme/api")
    proxy = routing.parse_proxy_name(name)
    token, _, _ = registry_tokens.issue(
        subject=f"license:{License.objects.get().uid}",
        audience=settings.PROXY_SERVICE,
        access=[{"type": "repository", "name": name, "actions": ["pull"]}],
    )
    raw = base64.b64encode(f"x:{license_id}".encode()).decode()
    for authorization, queries in ((f"Basic {raw}", 1), (f"Bearer {token}", 0)):
        request = RequestFactory().get("/", HTTP_AUTHORIZATION=authorization)
        assert isinstance(gate.authorize_in_db(request, name, proxy, "manifest", "1.0.0"), tuple)  # warm
        with CaptureQueriesContext(connection) as captured:
            result = gate.authorize_in_db(request, name, proxy, "manifest", "1.0.0")
        assert isinstance(result, tuple), result
        assert len(captured.captured_queries) == queries, [q["sql"] for q in captured.captured_queries]
