"""Oversized request bodies get 413 from the running portal (uvicorn) before they are sent
in full (portal/bodylimit.py; SECURITY-TESTS I10), in the error shape of each route."""

from __future__ import annotations

import base64
import json
import os
import socket
import time

import httpx
import pytest
from django.conf import settings

from licenses.models import Release
from tests import releasefiles
from tests.factories import user_token

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

HUGE = 200_000_000


def _open(server, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    lines = [f"POST {path} HTTP/1.1", f"Host: {server.netloc}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the answer (it must come within the socket's 5 s)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed without an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
    while len(body) < int(headers.get("content-length", 0)):
        body += sock.recv(65536)
    return int(status_line.split()[1]), headers, body


ROUTES = [
    pytest.param("/v2/token", "16 KiB", id="token-service"),
    pytest.param("/v2/proxy/acme-api/example.com/api/manifests/1", "16 KiB", id="proxy"),
    pytest.param("/hooks/registry", "256 KiB", id="registry-notifications"),
    pytest.param("/api/v1/apps/", "2 MiB", id="api"),
    pytest.param("/api/v1/apps/acme-api/releases/", "17 MiB", id="api-release-upload"),
    pytest.param("/api/v1/apps/acme-api/releases/lint/", "17 MiB", id="api-release-lint"),
    pytest.param("/login/", "64 KiB", id="login-page"),
    pytest.param("/apps/new/", "1 MiB", id="other-pages"),
    pytest.param("/apps/acme-api/releases/new/", "17 MiB", id="release-upload"),
]


def _assert_refused(path: str, limit: str, status: int, headers: dict[str, str], body: bytes) -> None:
    message = f"The request body is too large: at most {limit} here."
    assert status == 413, body
    assert headers["connection"] == "close"
    if path.startswith("/v2/"):
        assert json.loads(body) == {"errors": [{"code": "UNSUPPORTED", "message": message, "detail": None}]}
    elif path.startswith("/api/"):
        assert json.loads(body) == {"code": "too_large", "message": message}
    elif path.startswith("/hooks/"):
        assert json.loads(body) == {"error": message}
    else:
        assert headers["content-type"].startswith("text/plain") and body.decode() == message


@pytest.mark.parametrize("path, limit", ROUTES)
def test_a_huge_declared_body_is_refused_before_it_is_sent(portal_server, path, limit):
    started = time.monotonic()
    sock = _open(portal_server, path, {"Content-Type": "application/json", "Content-Length": str(HUGE)})
    sock.sendall(b"{" + b" " * 1024)  # a little of the 200 MB, then wait for the answer
    _assert_refused(path, limit, *_response(sock))
    assert time.monotonic() - started < 5
    sock.close()


@pytest.mark.parametrize(
    "path, limit, size", [("/v2/token", "16 KiB", 16 * 1024), ("/hooks/registry", "256 KiB", 256 * 1024)]
)
def test_a_chunked_body_is_refused_once_it_passes_the_limit_without_waiting_for_its_end(
    portal_server, path, limit, size
):
    sock = _open(portal_server, path, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
    chunk = b"x" * 8192
    for _ in range(size // len(chunk) + 1):  # just over the limit; the body's last chunk never comes
        sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    _assert_refused(path, limit, *_response(sock))
    sock.close()
    assert "Traceback" not in portal_server.log()


def test_requests_within_the_limits_are_served_as_before(portal_server, customer_license):
    license_id = customer_license.license_id
    url = f"{portal_server.url}/v2/token"
    grant = {"grant_type": "password", "username": "ops@globex.test", "password": license_id}
    form = {**grant, "service": settings.PROXY_SERVICE, "scope": "repository:proxy/acme-api/example.com/api:pull"}
    response = httpx.post(url, data=form, timeout=10)
    assert response.status_code == 200, response.text
    assert httpx.get(url, auth=(license_id, license_id), timeout=10).status_code == 200
    # A body of exactly the limit is read: its credentials are checked (and refused here).
    padding = 16 * 1024 - len("password=&padding=")
    body = "password=&padding=" + "x" * padding
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    assert httpx.post(url, content=body, headers=headers, timeout=10).status_code == 401
    chunked = httpx.post(url, content=iter([body.encode()]), headers=headers, timeout=10)  # no Content-Length
    assert chunked.status_code == 401


def test_a_release_archive_larger_than_the_apis_limit_is_uploaded(portal_server, admin, team, app):
    """The release upload's own limit lets a 16 MiB archive through; other API routes stay at 2 MiB."""
    files = {"app.yaml": "images: []\n"}
    for n in range(6):  # random base64 compresses to about 3/4: ~3.6 MiB of archive
        files[f"big-{n}.yaml"] = "# " + base64.b64encode(os.urandom(600_000)).decode() + "\n"
    data = releasefiles.tarball(files)
    assert len(data) > settings.BODY_LIMIT_API
    response = httpx.post(
        f"{portal_server.url}/api/v1/apps/{app.slug}/releases/",
        headers={"Authorization": f"Bearer {user_token(admin, team)}"},
        files={"archive": ("release.tar.gz", data, "application/gzip")},
        data={"version": "big"},
        timeout=30,
    )
    assert response.status_code == 201, response.text[:500]
    assert Release.objects.get(app=app).files.count() == 7
