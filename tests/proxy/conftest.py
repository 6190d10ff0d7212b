"""Helpers shared by the proxy tests: names, credentials, raw requests and skopeo."""

from __future__ import annotations

import base64
import http.client
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

# The ECR (moto) and GCR (google-auth) upstreams live with the registries tests; reuse them.
from tests.registries.conftest import ecr_basic_registry, gcr_token_registry  # noqa: F401

ALLOWED_RESPONSE_HEADERS = {
    # what the proxy passes from upstream or sets itself (SECURITY-TESTS A13)
    "content-type", "content-length", "content-range", "accept-ranges", "etag", "last-modified",
    "docker-content-digest", "docker-distribution-api-version", "retry-after", "www-authenticate", "link",
    # what Django's middleware and uvicorn add to every response
    "date", "server", "x-frame-options", "x-content-type-options", "referrer-policy", "content-security-policy",
    "cross-origin-opener-policy", "vary", "transfer-encoding", "connection",
}  # fmt: skip


# What skopeo sends; Distribution answers 404 to `*/*` for an OCI manifest, and so does the proxy.
MANIFEST_ACCEPT = {
    "Accept": ", ".join(
        [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
    )
}


def proxy_name(app_slug: str, netloc: str, repository: str) -> str:
    """`proxy/<app>/<host>__<port>/<repository>` as real clients write it."""
    return f"proxy/{app_slug}/{netloc.replace(':', '__')}/{repository}"


def basic(license_id: str, username: str | None = None) -> dict[str, str]:
    raw = f"{username or license_id}:{license_id}".encode()
    return {"Authorization": "Basic " + base64.b64encode(raw).decode(), **MANIFEST_ACCEPT}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **MANIFEST_ACCEPT}


def get_token(base_url: str, license_id: str, *names: str) -> str:
    params = [("service", "portal-proxy")] + [("scope", f"repository:{n}:pull") for n in names]
    response = httpx.get(f"{base_url}/v2/token", params=params, headers=basic(license_id), timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["token"]


@dataclass
class RawResponse:
    """Shaped like httpx.Response where the tests need it."""

    status_code: int
    headers: dict[str, str]  # lower-case names
    content: bytes

    def json(self) -> dict:
        return json.loads(self.content)


def raw_request(netloc: str, method: str, path: str, headers: dict[str, str] | None = None) -> RawResponse:
    """A request with the path sent byte for byte (httpx would normalise `..` away)."""
    host, port = netloc.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=15)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    finally:
        connection.close()


def skopeo(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["skopeo", *args], capture_output=True, text=True, timeout=timeout, check=False)


def wait_for(predicate: Callable[[], object], timeout: float = 5.0, interval: float = 0.05):
    """The first truthy value of `predicate()` within `timeout` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


def assert_oci_error(response, status: int | tuple[int, ...], *codes: str) -> None:
    """An OCI error body `{"errors": [{"code": …}]}` with one of these statuses and codes."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.content[:500])
    errors = response.json()["errors"]
    if codes:
        assert errors[0]["code"] in codes, errors
