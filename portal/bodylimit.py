"""413 for request bodies over a per-route limit, before they are read (an ASGI wrapper).

Django reads a whole request body (into memory or a temporary file) before any view runs,
so a view's own size check came after a 200 MB upload had been taken in. This refuses a
declared Content-Length over the limit at once, and counts the bytes of a body sent without
one (chunked) as they arrive, answering 413 as soon as they pass the limit; the application
then sees the client gone and never gets the body.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.conf import settings

from portal.ocierrors import oci_error_body

# The API's release uploads (create and lint) take an archive of up to 16 MiB, as the page does.
RELEASE_API_UPLOAD_PATH = re.compile(r"^/api/v1/apps/[^/]+/releases(?:/lint)?/?$")


@dataclass(frozen=True)
class Limit:
    size: int
    shape: str  # how the 413 is written: "oci", "api", "hook" or "page"


LOGIN_PATHS = ("/login/", "/signup/", "/invite/")
RELEASE_UPLOAD_PATH = re.compile(r"^/apps/[^/]+/releases/new/$")  # a folder of YAML or a .tar.gz


def limit_for(path: str) -> Limit:
    if path.startswith("/v2/"):  # the token service's small forms; the proxy is read-only
        return Limit(settings.BODY_LIMIT_V2, "oci")
    if path.startswith("/hooks/registry"):
        return Limit(settings.BODY_LIMIT_HOOKS, "hook")
    if RELEASE_API_UPLOAD_PATH.match(path):
        return Limit(settings.BODY_LIMIT_RELEASE_UPLOAD, "api")
    if path.startswith("/api/"):
        return Limit(settings.BODY_LIMIT_API, "api")
    if path.startswith(LOGIN_PATHS):
        return Limit(settings.BODY_LIMIT_LOGIN, "page")
    if RELEASE_UPLOAD_PATH.match(path):
        return Limit(settings.BODY_LIMIT_RELEASE_UPLOAD, "page")
    return Limit(settings.BODY_LIMIT_PAGES, "page")


def _size(n: int) -> str:
    for unit, factor in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= factor and n % factor == 0:
            return f"{n // factor} {unit}"
    return f"{n} bytes"


def refusal(limit: Limit) -> tuple[str, bytes]:
    """(content type, body) of the 413 in the shape the route's clients read."""
    message = f"The request body is too large: at most {_size(limit.size)} here."
    if limit.shape == "oci":
        body: object = oci_error_body("UNSUPPORTED", message)
    elif limit.shape == "api":
        body = {"code": "too_large", "message": message}
    elif limit.shape == "hook":
        body = {"error": message}
    else:
        return "text/plain; charset=utf-8", message.encode()
    return "application/json", json.dumps(body).encode()


def _declared_length(scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _refuse(send, limit: Limit) -> None:
    content_type, body = refusal(limit)
    headers = [
        (b"content-type", content_type.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),  # the rest of the body is never read
    ]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Wraps an ASGI application; see the module docstring."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = limit_for(scope["path"])
        declared = _declared_length(scope)
        if declared is not None and declared > limit.size:
            return await _refuse(send, limit)
        received = 0
        started = refused = False

        async def counting_receive():
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit.size:
                    refused = True
                    if not started:
                        await _refuse(send, limit)
                    return {"type": "http.disconnect"}  # Django drops the request quietly
            return message

        async def guarded_send(message):
            nonlocal started
            if refused:
                return  # whatever the application still says comes after our answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        return await self.app(scope, counting_receive, guarded_send)
