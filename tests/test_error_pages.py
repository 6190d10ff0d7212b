"""`make run` shows the portal's own pages, never Django's debug pages, and works over plain HTTP."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.db import OperationalError
from django.urls import get_resolver, include, path
from psycopg_pool import PoolTimeout

from licenses.management.commands.seed_demo import DEMO_EMAIL, DEMO_PASSWORD
from portal import asgi, basic_views
from tests.realparts.env import stop
from tests.realparts.portal_server import start_portal

ROOT = Path(__file__).resolve().parent.parent


def _boom(request):
    raise RuntimeError("internal detail that must not reach the page")


def _database_down(request):
    # What Django raises when PostgreSQL is gone (psycopg's error, wrapped).
    raise OperationalError('connection to server at "10.9.8.7", port 5432 failed: internal detail')


def _pool_exhausted(request):
    # psycopg_pool's own error, when no connection frees within DATABASE_POOL_TIMEOUT.
    raise PoolTimeout("couldn't get a connection after 3.00 sec: internal detail")


# The portal's routes and error handlers plus views that fail, at each front door
# (used with @pytest.mark.urls(__name__)).
urlpatterns = [
    path(f"{prefix}{name}", view)
    for prefix in ("", "v2/", "api/v1/")
    for name, view in (("boom/", _boom), ("database-down/", _database_down), ("pool-exhausted/", _pool_exhausted))
] + [path("", include("portal.urls"))]
handler500 = "portal.basic_views.server_error"  # as portal/urls.py sets it (checked below)


def test_the_portal_urls_answer_uncaught_exceptions_with_the_portals_handler():
    assert get_resolver("portal.urls").resolve_error_handler(500) is basic_views.server_error


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


@pytest.mark.django_db
@pytest.mark.urls(__name__)
@pytest.mark.parametrize(
    ("path", "status", "shape"),
    [
        ("/v2/database-down/", 503, {"errors": [{"code": "UNAVAILABLE", "detail": None}]}),
        ("/v2/boom/", 500, {"errors": [{"code": "UNAVAILABLE", "detail": None}]}),
        ("/api/v1/database-down/", 503, {"code": "database_unavailable"}),
        ("/api/v1/pool-exhausted/", 503, {"code": "database_unavailable"}),
        ("/api/v1/boom/", 500, {"code": "server_error"}),
    ],
)
def test_an_unexpected_error_answers_in_the_shape_of_its_front_door(client, settings, path, status, shape):
    """OCI errors under /v2/ (docker and skopeo print their message), the API's JSON under /api/;
    503 with Retry-After when the database failed, so clients try again."""
    settings.DEBUG = False
    client.raise_request_exception = False
    response = client.get(path)
    assert response.status_code == status
    assert response["Content-Type"] == "application/json"
    body = response.json()
    if "errors" in shape:
        assert [{k: e[k] for k in ("code", "detail")} for e in body["errors"]] == shape["errors"]
        assert body["errors"][0]["message"]
    else:
        assert body["code"] == shape["code"] and body["message"]
    assert ("Retry-After" in response) == (status == 503)
    assert "internal detail" not in response.content.decode() and "10.9.8.7" not in response.content.decode()


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_page_whose_database_is_down_says_so_with_503_and_no_details(client, settings):
    settings.DEBUG = False
    client.raise_request_exception = False
    response = client.get("/database-down/")
    assert response.status_code == 503 and response["Retry-After"]
    body = response.content.decode()
    assert "database is unavailable" in body and 'href="/static/css/portal.css"' in body
    assert "internal detail" not in body and "10.9.8.7" not in body


async def _asgi_get(app, path: str) -> tuple[int, dict[bytes, bytes], bytes]:
    """One GET through an ASGI application, as uvicorn would send it; header names in lower case."""
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 40000), "server": ("testserver", 80),
    }  # fmt: skip
    sent: list[dict] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]
    answered = asyncio.Event()

    async def receive():
        if requests:
            return requests.pop()
        await answered.wait()  # the client stays until the answer is complete
        return {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            answered.set()

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_the_registry_handler_without_middleware_answers_a_database_outage_with_an_oci_error(settings):
    """/v2/ goes to portal/asgi.py's handler without middleware: the same handler500 applies."""
    settings.DEBUG = False
    status, headers, body = asyncio.run(_asgi_get(asgi.application, "/v2/database-down/"))
    assert status == 503 and headers[b"retry-after"] and headers[b"content-type"] == b"application/json"
    assert json.loads(body)["errors"][0]["code"] == "UNAVAILABLE"
    assert b"internal detail" not in body


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
