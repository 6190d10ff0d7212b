"""Log redaction reaches every line the processes write: tracebacks included, and the loggers
uvicorn and celery set up for themselves (SECURITY-TESTS C2). The canaries travel in the two
forms the filter knows: an Authorization header (Basic, so base64 of user:secret) and password=."""

from __future__ import annotations

import base64
import io
import logging

from portal.logging import RedactSecretsFilter
from tests.realparts.cloud import canary

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
