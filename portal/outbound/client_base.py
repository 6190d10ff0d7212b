"""What the sync and async clients share besides the guard and the redirect driver: their
defaults, the headers every request carries, the cookie jar that takes nothing, and the body
limit of a response read whole."""

from __future__ import annotations

import http.cookiejar

import httpx

from .errors import ErrorCategory, RegistryError

DEFAULT_TIMEOUT = httpx.Timeout(15.0, connect=5.0)
MAX_BODY_BYTES = 4 * 1024 * 1024  # manifests and token responses; blobs are streamed

# identity: manifests are hashed as sent, blobs are already compressed, and a gzip bomb
# cannot get past a size limit it never had to expand.
DEFAULT_HEADERS = {"User-Agent": "vendor-portal", "Accept-Encoding": "identity"}


def no_cookies() -> http.cookiejar.CookieJar:
    # Nothing we call needs cookies; a jar that takes none cannot carry one across hosts.
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class BoundedBody:
    """A response body read whole, refused as soon as it grows past `limit` bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._body = bytearray()

    def add(self, chunk: bytes) -> None:
        self._body += chunk
        if len(self._body) > self._limit:
            raise RegistryError("response body is too large", ErrorCategory.INVALID_RESPONSE)

    def value(self) -> bytes:
        return bytes(self._body)


def with_body(response: httpx.Response, body: bytes) -> httpx.Response:
    """A fresh Response carrying the (decoded) bytes read, so `.content`/`.json()` work."""
    headers = httpx.Headers(response.headers)
    headers.pop("content-encoding", None)
    result = httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions={"http_version": response.extensions.get("http_version", b"HTTP/1.1")},
    )
    return result
