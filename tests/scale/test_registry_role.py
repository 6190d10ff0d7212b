"""PORTAL_WEB_ROLE=registry: a web process that serves only /v2/ (the token service and the
proxy), /healthz and /metrics, for the processes a load balancer sends /v2/ to; it imports
nothing of the pages or the API."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from licenses import services as licenses
from tests import factories
from tests.proxy.conftest import proxy_name, skopeo
from tests.realparts.env import child_env
from tests.realparts.portal_server import ROOT, run_portal_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_a_registry_process_pulls_and_answers_nothing_else(tmp_path, basic_registry, actor, team):
    app = factories.make_app(team, "registry-role")
    registry = factories.connect_registry(actor, basic_registry)
    image = basic_registry.images["api"]
    factories.make_release(actor, app, [(registry.name, image.repository, image.tag)])
    _, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")

    with run_portal_server(tmp_path, child_env(PORTAL_WEB_ROLE="registry", METRICS_TOKEN="scrape")) as server:
        name = proxy_name(app.slug, basic_registry.netloc, image.repository)
        pulled = skopeo("copy", "--src-tls-verify=false", "--src-creds", f"{license_id}:{license_id}",
                        f"docker://{server.netloc}/{name}:{image.tag}", f"dir:{tmp_path / 'out'}")  # fmt: skip
        assert pulled.returncode == 0, pulled.stderr + server.log()
        assert httpx.get(f"{server.url}/healthz").json() == {"status": "ok"}
        scraped = httpx.get(f"{server.url}/metrics", headers={"Authorization": "Bearer scrape"})
        assert scraped.status_code == 200 and "portal_upstream_request_seconds_count" in scraped.text
        for path in ("/", "/login/", "/api/v1/apps/", "/customer/v1/license"):
            response = httpx.get(f"{server.url}{path}")
            assert response.status_code == 404, (path, response.status_code)
            assert response.text == "Not found. This address serves only the registry API (/v2/).\n"
        assert "Traceback" not in server.log()


def test_a_registry_process_loads_no_view_of_the_pages_or_the_api(settings_for_subprocess):
    # The project's view and API modules, and the heavy parts of DRF they bring (the apps
    # themselves are installed in every process: django.setup() loads them).
    probe = (
        "import sys, portal.asgi\n"
        "ours = ('accounts', 'licenses', 'registries', 'delivery', 'insights', 'portal')\n"
        "loaded = sorted(m for m in sys.modules if (m.split('.')[0] in ours and m.rsplit('.', 1)[-1] in"
        " ('views', 'api', 'api_views')) or m in ('rest_framework.viewsets', 'drf_spectacular.views'))\n"
        "print('\\n'.join(loaded))\n"
    )
    shown = {}
    for role in ("registry", "all"):
        done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**settings_for_subprocess, "PORTAL_WEB_ROLE": role})  # fmt: skip
        assert done.returncode == 0, done.stderr
        shown[role] = set(done.stdout.split())
    assert {"licenses.views", "insights.views", "rest_framework.viewsets", "drf_spectacular.views"} <= shown["all"]
    assert shown["registry"] <= {"delivery.proxy.views"}, shown["registry"]


def test_an_unknown_role_is_refused_at_start_naming_the_setting(settings_for_subprocess):
    done = subprocess.run([sys.executable, "-c", "import portal.asgi"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60, env={**settings_for_subprocess, "PORTAL_WEB_ROLE": "proxy"})  # fmt: skip
    assert done.returncode != 0
    assert "PORTAL_WEB_ROLE is all or registry, not 'proxy'" in done.stderr
