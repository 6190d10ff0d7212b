"""Streaming a blob (OciClient.stream_blob): a redirect to storage is followed without the
credentials, and a blob of the wrong size or digest is refused. The loopback server plays the
registry and its storage: it can answer what a real registry would only when broken."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from portal.outbound.async_client import GuardedClient
from portal.outbound.errors import RegistryError
from registries.clients import oci
from tests.realparts.loopback import Reply

BODY = bytes(range(256)) * 12_000  # ~3 MiB: more than one piece
DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()


def stream(server, descriptor: oci.Descriptor, *, username: str | None = None) -> bytes:
    async def run() -> bytes:
        async with GuardedClient() as http:
            client = oci.OciClient(oci.parse_endpoint(server.url), http, username=username, password="pw")
            await client.ping()
            await client.authenticate("acme/api")
            pieces = [bytes(p) async for p in client.stream_blob("acme/api", descriptor)]
            assert max(len(p) for p in pieces) <= oci.BLOB_CHUNK
            return b"".join(pieces)

    return asyncio.run(run())


@pytest.fixture
def registry(loopback_server):
    return loopback_server()


def test_a_blob_redirected_to_storage_streams_there_without_the_credentials(registry, loopback_server):
    storage = loopback_server()
    registry.on("/v2/", Reply.challenge("", scheme="Basic"), Reply(200))
    registry.on(f"/v2/acme/api/blobs/{DIGEST}", Reply.redirect(f"{storage.url}/data/{DIGEST}?sig=1"))
    storage.on(f"/data/{DIGEST}", Reply(200, {}, BODY))

    assert stream(registry, oci.Descriptor("", DIGEST, len(BODY)), username="vendor") == BODY

    (asked,) = [r for r in registry.requests if "/blobs/" in r.path]
    assert asked.headers["authorization"].startswith("Basic ")
    (fetched,) = storage.requests
    assert "authorization" not in fetched.headers


@pytest.mark.parametrize(
    ("body", "size", "error"),
    [
        (BODY, len(BODY) - 1, "bytes, not"),  # Content-Length says more than the descriptor
        (BODY[:-1] + b"x", len(BODY), "does not match its digest"),
    ],
    ids=["wrong-size", "wrong-digest"],
)
def test_a_blob_of_the_wrong_size_or_digest_is_refused(registry, body, size, error):
    registry.on("/v2/", Reply(200))
    registry.on(f"/v2/acme/api/blobs/{DIGEST}", Reply(200, {}, body))

    with pytest.raises(RegistryError, match=error):
        stream(registry, oci.Descriptor("", DIGEST, size))
