"""`make run` shows the portal's own pages, never Django's debug pages, and works over plain HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.urls import include, path

from licenses.management.commands.seed_demo import DEMO_EMAIL, DEMO_PASSWORD
from tests.realparts.env import stop
from tests.realparts.portal_server import start_portal

ROOT = Path(__file__).resolve().parent.parent


def _boom(request):
    raise RuntimeError("internal detail that must not reach the page")


# The portal's routes plus one view that fails (used with @pytest.mark.urls(__name__)).
urlpatterns = [path("boom/", _boom), path("", include("portal.urls"))]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_an_unexpected_error_shows_the_generic_500_page_without_details(client, settings):
    settings.DEBUG = False
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body and 'href="/static/css/portal.css"' in body
    assert "internal detail" not in body and "Traceback" not in body


def _make_run_env(var_dir: Path) -> dict[str, str]:
    """scripts/local.env as run.sh exports it, on an otherwise empty environment (as a newcomer's)."""
    env = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(var_dir)}
    for line in (ROOT / "scripts" / "local.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    return env


@pytest.mark.slow
def test_make_run_settings_serve_plain_http_pages_static_files_and_no_debug_pages(tmp_path):
    env = _make_run_env(tmp_path)
    assert env["DEBUG"] == "0"
    for command in (("migrate", "--noinput", "-v0"), ("seed_demo",)):
        result = subprocess.run(
            [sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr
    web = start_portal(env, tmp_path / "web.log")
    try:
        with httpx.Client(base_url=web.url, timeout=30) as browser:
            missing = browser.get("/no-such-page/")
            assert missing.status_code == 404
            assert "There is nothing here" in missing.text
            assert "Page not found (404)" not in missing.text and "URLconf" not in missing.text

            css = browser.get("/static/css/portal.css")
            assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")

            docs = browser.get("/api/v1/docs/")
            assert docs.status_code == 200 and "swagger-ui" in docs.text
            bundle = re.search(r'src="(/static/[^"]*swagger-ui-bundle\.js)"', docs.text)
            assert bundle and browser.get(bundle.group(1)).status_code == 200

            # Logging in over http:// works: no redirect to https://, no Secure cookie, no HSTS.
            login = browser.get("/login/")
            assert login.status_code == 200 and "strict-transport-security" not in login.headers
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
            form = {"username": DEMO_EMAIL, "password": DEMO_PASSWORD, "csrfmiddlewaretoken": csrf.group(1)}
            response = browser.post("/login/", data=form)
            assert response.status_code == 302, response.text
            assert "Demo App" in browser.get(response.headers["location"]).text
    finally:
        stop(web.process)
    assert "Traceback" not in web.log()
