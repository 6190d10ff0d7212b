"""PORTAL_UI_HOST: the pages and the API answer only there, the customer doors never do, so
upstream bytes never share an origin with a vendor's session. Unset: one host for all."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from licenses import services as licenses
from tests import factories
from tests.hosts.conftest import basic, client

pytestmark = pytest.mark.django_db

UI = "portal.vendor.test"
PROXY = "proxy.portal.test"  # PORTAL_URL's host
ACME = "proxy.acme.test"


@pytest.fixture
def split(settings, allowed_hosts, actor, team, make_domain):
    settings.PORTAL_UI_HOST = UI
    settings.PORTAL_URL = f"https://{PROXY}"
    allowed_hosts.extend([UI, PROXY])
    app = factories.make_app(team, "acme-api")
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    make_domain(team, ACME)
    return license_id


def test_pages_and_the_api_answer_only_on_the_ui_host(split, admin_client, admin_api):
    assert admin_client.get("/", HTTP_HOST=UI).status_code == 200
    assert admin_api.get("/api/v1/apps/", HTTP_HOST=UI).status_code == 200
    for host in (PROXY, "testserver", "127.0.0.1"):
        page = admin_client.get("/", HTTP_HOST=host)
        assert page.status_code == 404, host
        assert b"Dashboard" not in page.content
        api = admin_api.get("/api/v1/apps/", HTTP_HOST=host)
        assert api.status_code == 404 and api.json()["code"] == "not_found", host
        assert client(host).get("/login/").status_code == 404
        assert client(host).get("/static/css/portal.css").status_code == 404


def test_the_customer_doors_never_answer_on_the_ui_host(split):
    auth = {"HTTP_AUTHORIZATION": basic(split)}
    for path in ("/v2/", "/v2/token", "/.well-known/jwks.json"):
        assert client(UI).get(path, **auth).status_code == 404, path
    kit = client(UI).get("/customer/v1/install-kit.tar.gz", **auth)
    assert kit.status_code == 404 and kit.json()["code"] == "not_found"
    # They answer on the proxy host and on the team's domain.
    assert client(PROXY).get("/v2/", **auth).status_code == 200
    assert client(ACME).get("/v2/", **auth).status_code == 200
    assert client(PROXY).get("/.well-known/jwks.json").status_code == 200


def test_the_health_probe_answers_on_any_portal_host(split):
    assert client(UI).get("/healthz").status_code == 200
    assert client(PROXY).get("/healthz").status_code == 200


def test_unset_one_host_serves_pages_and_doors_as_before(settings, admin_client, customer_license):
    assert settings.PORTAL_UI_HOST == ""
    assert admin_client.get("/").status_code == 200
    assert client().get("/v2/", HTTP_AUTHORIZATION=basic(customer_license.license_id)).status_code == 200


def test_the_ui_host_cannot_be_the_registry_host():
    root = Path(__file__).resolve().parent.parent.parent
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "portal.settings"}
    env.update(PORTAL_URL="https://portal.vendor.test", PORTAL_UI_HOST="Portal.Vendor.Test")
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "PORTAL_UI_HOST must differ from PORTAL_URL's host (portal.vendor.test)" in done.stderr
