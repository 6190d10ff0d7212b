"""Misbehaving upstreams behind the proxy: down, 500 (passing or not), 429, truncated or lying
blobs and manifests, oversized manifests and tag lists, rejected vendor credentials, and blob
redirects (allowed and forbidden).

The upstreams are loopback servers (tests/realparts/loopback.py) and, for what an
http.server cannot send (a short body under a longer Content-Length, an endless chunked
body), a raw socket server defined here. SECURITY-TESTS F1, F3, F4, F5, I3, I4, I5, I9, A13,
S4, S6 and the "credentials rejected" rule of issue 4.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from email.utils import formatdate

import httpx
import pytest

from licenses import services as licenses
from licenses.models import PullEvent
from registries import services as registries
from tests import factories
from tests.proxy.conftest import ALLOWED_RESPONSE_HEADERS, assert_oci_error, basic, wait_for
from tests.realparts.loopback import Reply

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MiB = 1024 * 1024
CANARY = "CANARY-3f1c9a2e-upstream-password"
CANARY_USER = "canary-user-5e1d"


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _manifest(size: int | None = None) -> bytes:
    """A valid OCI image manifest, padded with an annotation to exactly `size` bytes."""
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": _digest(b"{}"), "size": 2},
        "layers": [],
        "annotations": {"pad": ""},
    }
    body = json.dumps(doc, separators=(",", ":")).encode()
    if size is not None:
        doc["annotations"]["pad"] = "a" * (size - len(body))
        body = json.dumps(doc, separators=(",", ":")).encode()
        assert len(body) == size
    return body


class RawUpstream:
    """A loopback listener that answers each path with raw bytes, then closes the connection."""

    def __init__(self) -> None:
        self.routes: dict[str, Callable[[socket.socket], None]] = {}
        self.paths: list[str] = []
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    @property
    def netloc(self) -> str:
        return f"127.0.0.1:{self._sock.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            path = data.split(b" ", 2)[1].decode().split("?")[0]
            self.paths.append(path)
            handler = self.routes.get(path)
            try:
                if handler is None:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                else:
                    handler(conn)
            except OSError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self._sock.close()


def _short_body(declared: int, body: bytes) -> Callable[[socket.socket], None]:
    def send(conn: socket.socket) -> None:
        head = f"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
        conn.sendall(head.encode() + body)

    return send


def _chunked(total: int) -> Callable[[socket.socket], None]:
    def send(conn: socket.socket) -> None:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Type: {OCI_MANIFEST}\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        piece = b"{" + b" " * (64 * 1024 - 1)
        for _ in range(total // len(piece)):
            conn.sendall(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
        conn.sendall(b"0\r\n\r\n")

    return send


@pytest.fixture
def raw_upstream():
    server = RawUpstream()
    yield server
    server.stop()


@pytest.fixture
def only_127_0_0_1(settings_for_subprocess):
    """The portal server may reach 127.0.0.1 only, so 127.0.0.2 stands for a forbidden address."""
    settings_for_subprocess["REGISTRIES_ALLOWED_PRIVATE_NETWORKS"] = "127.0.0.1/32"


def _stream(client: httpx.Client, url: str) -> tuple[int, bytes, Exception | None, httpx.Headers]:
    """Status, the bytes received and the error that cut the body short, if any."""
    received = bytearray()
    with client.stream("GET", url) as response:
        try:
            for chunk in response.iter_raw():
                received += chunk
        except httpx.HTTPError as e:
            return response.status_code, bytes(received), e, response.headers
        return response.status_code, bytes(received), None, response.headers


def test_upstream_faults_map_to_clear_errors_and_bad_bytes_never_complete(
    loopback_server, raw_upstream, closed_port, only_127_0_0_1, portal_server, actor, team
):
    # The upstreams are set up before the portal so they stop after it: a stopping loopback
    # server waits for the connections the portal's pool keeps open.
    up = loopback_server()
    storage = loopback_server()
    forbidden = loopback_server(host="127.0.0.2")
    app = factories.make_app(team, "faults")
    for endpoint in (up.url, f"http://127.0.0.1:{closed_port}", f"http://{raw_upstream.netloc}"):
        registry = registries.registry_create(
            actor=actor,
            provider="other",
            endpoint=endpoint,
            username=CANARY_USER,
            password=CANARY,
            skip_validation=True,
        )
        factories.allow_whole_registry(actor, app, registry)
    license, license_id = licenses.license_create(actor=actor, app=app, customer_name="Globex")

    rng = random.Random(4)
    blob = rng.randbytes(MiB)
    blob_digest = _digest(blob)
    wrong = bytes(b ^ 0xFF for b in blob[-1000:])
    lying_blob = blob[:-1000] + wrong  # same length, last bytes changed
    good_manifest = _manifest()
    exact = _manifest(4 * MiB)
    too_big = _manifest(4 * MiB + 1)
    challenge = Reply.challenge("http://127.0.0.1:1/unused", scheme="Basic")
    up.on("/v2/acme/err500/manifests/1.0.0", Reply.error(500))
    up.on("/v2/acme/flaky/manifests/1.0.0", Reply.error(500), Reply.error(503),
          Reply(200, {"Content-Type": OCI_MANIFEST}, _manifest()))  # fmt: skip
    up.on("/v2/acme/limited/manifests/1.0.0", Reply.rate_limited("17"))
    in_two_minutes = formatdate(time.time() + 120, usegmt=True)  # Retry-After as an HTTP date
    up.on("/v2/acme/limited-until/manifests/1.0.0", Reply.rate_limited(in_two_minutes))
    up.on("/v2/acme/locked/manifests/1.0.0", challenge)
    up.on(f"/v2/acme/lying/blobs/{blob_digest}", Reply(200, {"Content-Type": "application/octet-stream"}, lying_blob))
    up.on(
        f"/v2/acme/lying/manifests/{_digest(b'something else')}",
        Reply(200, {"Content-Type": OCI_MANIFEST}, good_manifest),
    )
    up.on("/v2/acme/liar-tag/manifests/1.0.0",
          Reply(200, {"Content-Type": "application/json", "Docker-Content-Digest": _digest(b"x")}, good_manifest))  # fmt: skip
    up.on("/v2/acme/exact/manifests/1.0.0", Reply(200, {"Content-Type": OCI_MANIFEST}, exact))
    up.on("/v2/acme/big/manifests/1.0.0", Reply(200, {"Content-Type": OCI_MANIFEST}, too_big))
    up.on("/v2/acme/tags/tags/list", Reply.json({"name": "acme/tags", "tags": ["b", "a", "c"]}))
    # An S3-like redirect after a login: the storage gets no Authorization, and its headers stay behind.
    signed = f"{storage.url}/bucket/blob?X-Amz-Signature=SIGNED-URL-SECRET"
    up.on(f"/v2/acme/redirected/blobs/{blob_digest}", challenge, Reply.redirect(signed, 307))
    storage.on("/bucket/blob", Reply(200, {
        "Content-Type": "application/octet-stream", "Server": "AmazonS3", "X-Amz-Request-Id": "STORAGE-HEADER",
        "X-Ms-Copy-Source": "private-repo-name",
    }, blob))  # fmt: skip
    up.on(f"/v2/acme/imds/blobs/{blob_digest}", Reply.redirect("http://169.254.169.254/latest/meta-data/", 302))
    up.on(f"/v2/acme/forbidden/blobs/{blob_digest}", Reply.redirect(f"{forbidden.url}/internal", 302))
    forbidden.on("*", Reply(200, {}, blob))
    raw_upstream.routes[f"/v2/acme/truncated/blobs/{blob_digest}"] = _short_body(2 * MiB, blob)
    raw_upstream.routes["/v2/acme/endless/manifests/1.0.0"] = _chunked(5 * MiB)
    raw_upstream.routes["/v2/acme/endless/tags/list"] = _chunked(5 * MiB)

    v2 = f"{portal_server.url}/v2/proxy/faults"
    at_up = f"{v2}/{up.netloc.replace(':', '__')}/acme"
    at_raw = f"{v2}/{raw_upstream.netloc.replace(':', '__')}/acme"
    seen: list[httpx.Response] = []
    with httpx.Client(headers=basic(license_id), timeout=30, event_hooks={"response": [seen.append]}) as http:
        # Stopped upstream: 503 with Retry-After, at once.
        started = time.monotonic()
        down = http.get(f"{v2}/127.0.0.1__{closed_port}/acme/api/manifests/1.0.0")
        assert_oci_error(down, 503, "UNAVAILABLE")
        assert int(down.headers["retry-after"]) > 0 and time.monotonic() - started < 3
        down_blob = http.get(f"{v2}/127.0.0.1__{closed_port}/acme/api/blobs/{blob_digest}")
        assert_oci_error(down_blob, 503, "UNAVAILABLE")
        assert "retry-after" in down_blob.headers

        # F3: a 5xx is tried again twice with backoff, so a passing failure is no failure;
        # one that stays is 503 (never the upstream's body). 429 passes with its Retry-After.
        flaky = http.get(f"{at_up}/flaky/manifests/1.0.0")
        assert flaky.status_code == 200 and flaky.content == _manifest()
        assert len([r for r in up.requests if r.path == "/v2/acme/flaky/manifests/1.0.0"]) == 3
        failed = http.get(f"{at_up}/err500/manifests/1.0.0")
        assert_oci_error(failed, 503, "UNAVAILABLE")
        assert "retry-after" in failed.headers
        assert len([r for r in up.requests if r.path == "/v2/acme/err500/manifests/1.0.0"]) == 3
        limited = http.get(f"{at_up}/limited/manifests/1.0.0")
        assert_oci_error(limited, 429, "TOOMANYREQUESTS")
        assert limited.headers["retry-after"] == "17"
        until = http.get(f"{at_up}/limited-until/manifests/1.0.0")
        assert_oci_error(until, 429, "TOOMANYREQUESTS")
        assert 60 < int(until.headers["retry-after"]) <= 120, "a date is passed on as the seconds until it"
        assert len([r for r in up.requests if r.path == "/v2/acme/limited/manifests/1.0.0"]) == 1

        # The vendor's credentials are refused: 502, nothing of them in the answer.
        locked = http.get(f"{at_up}/locked/manifests/1.0.0")
        assert_oci_error(locked, 502)
        logins = [r for r in up.requests if r.path == "/v2/acme/locked/manifests/1.0.0"]
        assert any("authorization" in r.headers for r in logins) and len(logins) <= 4
        encoded = base64.b64encode(f"{CANARY_USER}:{CANARY}".encode()).decode()
        for text in (locked.text, str(locked.headers)):
            assert CANARY not in text and encoded not in text and CANARY_USER not in text

        # Manifests: by digest verified; by tag the digest is computed, never taken from upstream;
        # the content type comes from the manifest; 4 MiB is served, one byte more is refused.
        lying = http.get(f"{at_up}/lying/manifests/{_digest(b'something else')}")
        assert_oci_error(lying, 502, "DIGEST_INVALID")
        liar = http.get(f"{at_up}/liar-tag/manifests/1.0.0")
        assert liar.status_code == 200 and liar.content == good_manifest
        assert liar.headers["docker-content-digest"] == _digest(good_manifest)
        assert liar.headers["content-type"] == OCI_MANIFEST
        # HEAD by tag says what GET would: the computed digest, the body's length and type.
        liar_head = http.head(f"{at_up}/liar-tag/manifests/1.0.0")
        assert liar_head.status_code == 200 and liar_head.content == b""
        assert liar_head.headers["docker-content-digest"] == _digest(good_manifest)
        assert int(liar_head.headers["content-length"]) == len(good_manifest)
        assert liar_head.headers["content-type"] == OCI_MANIFEST
        assert {r.method for r in up.requests if r.path == "/v2/acme/liar-tag/manifests/1.0.0"} == {"GET"}
        served = http.get(f"{at_up}/exact/manifests/1.0.0")
        assert served.status_code == 200 and served.headers["docker-content-digest"] == _digest(exact)
        assert_oci_error(http.get(f"{at_up}/big/manifests/1.0.0"), 502, "MANIFEST_INVALID")
        assert_oci_error(http.get(f"{at_raw}/endless/manifests/1.0.0"), 502, "MANIFEST_INVALID")
        # A tag list is read up to 4 MiB too, never into memory whole.
        endless_tags = http.get(f"{at_raw}/endless/tags/list")
        assert_oci_error(endless_tags, 502, "UNAVAILABLE")
        assert "too large" in endless_tags.json()["errors"][0]["message"]

        # Blobs: a body cut short and a body that does not hash to its digest both abort.
        status, received, error, headers = _stream(http, f"{at_raw}/truncated/blobs/{blob_digest}")
        assert status == 200 and error is not None and len(received) < 2 * MiB, (len(received), error)
        status, received, error, headers = _stream(http, f"{at_up}/lying/blobs/{blob_digest}")
        assert status == 200 and int(headers["content-length"]) == MiB
        assert error is not None and len(received) < MiB, (len(received), error)
        assert wrong not in received and received == lying_blob[: len(received)]

        # A redirect to storage is followed without the Authorization header.
        redirected = http.get(f"{at_up}/redirected/blobs/{blob_digest}")
        assert redirected.status_code == 200 and redirected.content == blob
        assert [r.path for r in storage.requests] == ["/bucket/blob?X-Amz-Signature=SIGNED-URL-SECRET"]
        assert "authorization" not in storage.requests[0].headers
        assert any("authorization" in r.headers for r in up.requests if "/redirected/" in r.path)
        # Redirects to metadata or to a forbidden address are refused without a connection.
        started = time.monotonic()
        assert_oci_error(http.get(f"{at_up}/imds/blobs/{blob_digest}"), 502)
        assert time.monotonic() - started < 3
        assert_oci_error(http.get(f"{at_up}/forbidden/blobs/{blob_digest}"), 502)
        assert forbidden.requests == []

        # tags/list: n is capped before it goes upstream; a bad n never goes upstream.
        assert http.get(f"{at_up}/tags/tags/list", params={"n": 10**9}).json()["tags"] == ["a", "b", "c"]
        assert [r.path for r in up.requests if "/tags/list" in r.path] == ["/v2/acme/tags/tags/list?n=1000"]
        assert http.get(f"{at_up}/tags/tags/list", params={"n": -1}).status_code == 400
        assert len([r for r in up.requests if "/tags/list" in r.path]) == 1

    # Nothing of the upstreams reached the customer: no foreign headers, hosts or bodies.
    for response in seen:
        assert set(response.headers) <= ALLOWED_RESPONSE_HEADERS, (response.url, dict(response.headers))
        text = str(response.headers) + (
            response.text if response.headers.get("content-type") == "application/json" else ""
        )
        for leak in ("SECRET-BODY", "SIGNED-URL-SECRET", "STORAGE-HEADER", "private-repo-name", storage.netloc,
                     up.netloc, raw_upstream.netloc, f"127.0.0.1:{closed_port}", "169.254", CANARY):  # fmt: skip
            assert leak not in text, (leak, response.url, text[:500])

    # The pull log says what went wrong; a blob that failed is never logged as a success.
    def blob_events():
        rows = {e.reference + e.repository.rsplit("/", 1)[1]: e for e in PullEvent.objects.filter(kind="blob")}
        return rows if len(rows) >= 5 else None

    events = wait_for(blob_events, timeout=5)
    assert events, list(PullEvent.objects.values("repository", "status", "reason"))
    lying_event = events[blob_digest + "lying"]
    assert (lying_event.status, lying_event.reason) == (502, "digest mismatch")
    assert lying_event.bytes < MiB
    assert events[blob_digest + "truncated"].status == 502
    assert events[blob_digest + "redirected"].status == 200
    # A stopped upstream was answered 503, and so it is logged.
    down_rows = PullEvent.objects.filter(repository__startswith=f"proxy/faults/127.0.0.1__{closed_port}/")
    assert sorted(down_rows.values_list("kind", "status", "reason")) == [
        ("blob", 503, "connect"),
        ("manifest", 503, "connect"),
    ]
    assert wait_for(lambda: "digest mismatch on blob" in portal_server.log(), timeout=3), portal_server.log()
    assert license.pk == lying_event.license_id
