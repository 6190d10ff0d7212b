"""Log redaction reaches every line the processes write: tracebacks included, and the loggers
uvicorn and celery set up for themselves (SECURITY-TESTS C2). The canaries travel in the two
forms the filter knows: an Authorization header (Basic, so base64 of user:secret) and password=."""

from __future__ import annotations

import base64
import io
import logging

import httpx
import pytest

from portal.celery import app as celery_app
from portal.logging import RedactSecretsFilter
from tests.celery_worker import celery_worker, wait_for
from tests.realparts.cloud import canary
from tests.realparts.env import child_env
from tests.realparts.portal_server import run_portal_server

REFUSAL = "upstream refused the login: Authorization: Basic [redacted]"


def _authorization(secret: str) -> str:
    return "Basic " + base64.b64encode(f"acme:{secret}".encode()).decode()


def _leaks(text: str, secret: str) -> list[str]:
    forms = {
        "raw": secret,
        "basic": _authorization(secret).split()[1],
        "base64": base64.b64encode(secret.encode()).decode()[:-4],  # its last group depends on what follows
    }
    return [name for name, form in forms.items() if form in text]


def test_a_logged_traceback_is_redacted_by_the_root_handler():
    """The exception's text reaches the log through the formatter, not through getMessage()."""
    secret = canary()
    [handler] = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecretsFilter) for f in h.filters)]
    stream = io.StringIO()
    previous = handler.setStream(stream)
    try:
        try:
            raise RuntimeError(f"upstream refused the login: Authorization: {_authorization(secret)}")
        except RuntimeError:
            logging.getLogger("registries.services").exception("Registry test failed")
    finally:
        handler.setStream(previous)
    text = stream.getvalue()
    assert "ERROR registries.services Registry test failed\nTraceback (most recent call last):" in text
    assert f"RuntimeError: {REFUSAL}" in text
    assert _leaks(text, secret) == []


@pytest.mark.slow
def test_uvicorn_and_django_log_lines_are_redacted(transactional_db, tmp_path):
    """A real uvicorn (as the Procfile starts it, DEBUG on as `make run` has it) serves a view that
    fails, and one whose streamed body fails after the response started (uvicorn logs that one)."""
    secret = canary()
    env = child_env(DJANGO_SETTINGS_MODULE="tests.realparts.canary_settings", DEBUG="1")
    with run_portal_server(tmp_path, env) as server:
        headers = {"X-Canary": _authorization(secret)}
        failed = httpx.get(f"{server.url}/canary/fail?password={secret}", headers=headers, timeout=10)
        assert failed.status_code == 500
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"{server.url}/canary/fail-while-streaming", headers=headers, timeout=10).read()
        assert wait_for(lambda: "Exception in ASGI application" in server.log(), timeout=10), server.log()
    log = server.log()
    # uvicorn's own loggers write through the portal's handler (its format, its filter).
    assert " INFO uvicorn.error Application startup complete." in log
    assert " INFO uvicorn.access 127.0.0.1:" in log and '"GET /canary/fail?password=[redacted] HTTP/1.1" 500' in log
    assert " ERROR uvicorn.error Exception in ASGI application\nTraceback (most recent call last):" in log
    assert " ERROR django.request Internal Server Error: /canary/fail\nTraceback (most recent call last):" in log
    assert log.count(f"RuntimeError: {REFUSAL}") >= 2
    assert _leaks(log, secret) == [], log


@pytest.mark.slow
def test_celery_worker_log_lines_are_redacted(transactional_db, tmp_path, private_queue):
    """A real worker runs a task that logs through a task logger and then fails."""
    secret = canary()
    log = tmp_path / "worker.log"
    with celery_worker(log, "--include", "tests.realparts.canary_app", queue=private_queue):
        celery_app.send_task("canary.fail", args=[_authorization(secret), secret])
        assert wait_for(lambda: "raised unexpected" in log.read_text(), timeout=30), log.read_text()
    text = log.read_text()
    assert "retrying the upstream login with password=[redacted]" in text
    assert "raised unexpected: RuntimeError('upstream refused the login: Authorization: Basic [redacted]')" in text
    assert "Traceback (most recent call last):" in text and f"RuntimeError: {REFUSAL}" in text
    assert _leaks(text, secret) == [], text


@pytest.mark.slow
def test_uvicorn_no_access_log_writes_no_access_lines(transactional_db, tmp_path):
    """The Procfile's --no-access-log holds although LOGGING routes uvicorn's loggers through the
    root handler (an access line per request cost the token service CPU: bench/tokens.py)."""
    with run_portal_server(tmp_path, child_env(), "--no-access-log") as server:
        assert httpx.get(f"{server.url}/healthz", timeout=10).status_code == 200
        assert httpx.get(f"{server.url}/v2/token", timeout=10).status_code == 401
    log = server.log()
    assert " INFO uvicorn.error Application startup complete." in log
    assert "uvicorn.access" not in log, log
