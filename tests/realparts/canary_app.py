"""A view and a task that fail with the caller's canary in their exception message, as a bug in
an upstream client could. tests/test_log_redaction.py loads them into a real uvicorn (through
canary_settings) and a real celery worker (`--include`), and greps what they log."""

from __future__ import annotations

from celery import shared_task
from celery.utils.log import get_task_logger
from django.http import HttpRequest, StreamingHttpResponse
from django.urls import include, path


def _refusal(authorization: str) -> RuntimeError:
    return RuntimeError(f"upstream refused the login: Authorization: {authorization}")


def fail(request: HttpRequest):
    raise _refusal(request.headers["X-Canary"])


def fail_while_streaming(request: HttpRequest):
    """The exception escapes Django's handler (the response has started), so uvicorn logs it."""
    authorization = request.headers["X-Canary"]

    async def body():
        yield b"partial"
        raise _refusal(authorization)

    return StreamingHttpResponse(body())


urlpatterns = [
    path("canary/fail", fail),
    path("canary/fail-while-streaming", fail_while_streaming),
    path("", include("portal.urls")),
]


@shared_task(name="canary.fail")
def fail_task(authorization: str, password: str) -> None:
    # Task loggers are children of "celery.task", which celery gives a handler of its own.
    get_task_logger(__name__).error("retrying the upstream login with password=%s", password)
    raise _refusal(authorization)
