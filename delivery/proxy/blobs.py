"""GET/HEAD /v2/<name>/blobs/<digest> through the proxy: from the team's cache when it holds
the blob, else fetched upstream once for every request that wants it meanwhile
(delivery/proxy/fill.py), else (a Range, a HEAD, no cache) streamed straight from the upstream,
hashed as it passes; the last piece goes out only once the digest checks out."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from functools import partial

import httpx
from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from delivery.proxy import answers, cache, fill, gate, pieces
from delivery.proxy.upstream import open_stream
from delivery.routing import Upstream
from portal import metrics
from portal.db import pooled
from portal.objectstore import StorageError
from portal.ocierrors import API_VERSION, oci_error
from portal.outbound.errors import ErrorCategory, RegistryError
from portal.outbound.httperrors import as_registry_error

logger = logging.getLogger(__name__)

HASH_BATCH_BYTES = 256 * 1024  # blob bytes hashed per trip to a worker thread


@csrf_exempt
async def blob(request, name: str, digest: str):
    """A blob from the team's cache when it holds it, else fetched upstream once for every
    request that wants it meanwhile (delivery/proxy/fill.py), else streamed straight through
    (a Range, a HEAD, no cache)."""
    if request.method not in ("GET", "HEAD"):
        return oci_error(405, "UNSUPPORTED", "the proxy is read-only")
    if refusal := answers.digest_refusal(digest):
        return refusal
    resolved = await gate.resolve(request, name, "blob", digest, partial(_blob_lookup, digest))
    if isinstance(resolved, HttpResponse):
        return resolved
    caller, app, upstream, found = resolved
    if found is not None and not found.linked and not await _upstream_has(upstream, digest, found):
        found = None
    if found is not None:
        answer = await _cached_blob(request, caller, app, name, digest, found)
        if answer is not None:
            return answer
    if request.method == "GET" and not request.headers.get("Range") and cache.enabled():
        return await _shared_fetch(request, caller, app, name, digest, upstream)
    return await _upstream_blob(request, caller, app, name, digest, upstream)


def _blob_lookup(digest: str, upstream: Upstream) -> cache.Found | None:
    return cache.find(upstream, digest, cache.BLOB)


async def _upstream_has(upstream: Upstream, digest: str, found: cache.Found) -> bool:
    """Whether the upstream repository holds a blob the team's cache has from another of its
    repositories; if so it is linked to this one and served from the cache from now on."""
    try:
        response, stack = await open_stream(upstream, "HEAD", f"blobs/{digest}", {})
        await stack.aclose()
    except (RegistryError, httpx.HTTPError):
        return False
    if response.status_code != 200:
        return False
    await pooled(cache.link, upstream, found)
    return True


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None | bool:
    """(start, end exclusive) of a single `bytes=` range, None for the whole blob (no header, or
    one this does not answer: several ranges, another unit), False when not satisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if not first:
            start, end = max(size - int(last), 0), size
        else:
            start, end = int(first), (min(int(last) + 1, size) if last else size)
    except ValueError:
        return None
    if start < 0 or start >= size or end <= start:
        return False
    return start, end


async def _store_chunks(key: str, start: int = 0, end: int | None = None):
    """The cached object's bytes, a chunk at a time; StorageError at once (before a response
    begins) when it cannot be opened. A file of the local cache is read on the event loop
    (`_local_chunks`); a bucket's reads wait on the network, so they run in a worker thread."""
    loop = asyncio.get_running_loop()
    store = cache.store()
    if store.kind == "file":
        return _local_chunks(store.read(key, start, end, piece=pieces.size))
    chunks = await loop.run_in_executor(None, store.read, key, start, end)

    async def read():
        reading = None
        try:
            # Shielded: a request cancelled (its client hung up) while a read runs in the thread
            # closes the generator only after that read; closing it meanwhile raised "generator
            # already executing" and left the file open (seen under 100 concurrent pulls).
            while True:
                reading = loop.run_in_executor(None, next, chunks, None)
                if (chunk := await asyncio.shield(reading)) is None:
                    break
                yield chunk
        finally:
            if reading is not None and not reading.done():
                with contextlib.suppress(Exception):
                    await reading
            await loop.run_in_executor(None, chunks.close)

    return read()


async def _local_chunks(chunks):
    """A local cache file's pieces (sized by delivery/proxy/pieces.py), read on the event loop:
    a read from the page cache costs less than handing it to a thread and back, which was a
    tenth of a warm pull's CPU (bench/proxy.py)."""
    with pieces.sharing(), contextlib.closing(chunks):
        for chunk in chunks:
            yield chunk


async def _cached_blob(request, caller, app, name: str, digest: str, found: cache.Found):
    """The cached blob's answer (the whole blob or one range), or None when its bytes cannot be
    read (evicted a moment ago, the bucket failing): then it is fetched as a miss."""
    headers = {
        **API_VERSION, "Content-Type": answers.BLOB_TYPE, "Docker-Content-Digest": digest, "Accept-Ranges": "bytes",
        "ETag": f'"{digest}"',
    }  # fmt: skip
    span = _byte_range(request.headers.get("Range"), found.size)
    if span is False:
        return oci_error(
            416, "BLOB_UNKNOWN", "range not satisfiable", headers={"Content-Range": f"bytes */{found.size}"}
        )
    start, end = span or (0, found.size)
    status = 206 if span else 200
    headers["Content-Length"] = str(end - start)
    if span:
        headers["Content-Range"] = f"bytes {start}-{end - 1}/{found.size}"
    metrics.CACHE_REQUESTS.labels(cache.BLOB, "hit").inc()
    if request.method == "HEAD":
        return HttpResponse(status=status, headers=headers)
    try:
        chunks = await _store_chunks(found.key, start, end)
    except StorageError as e:
        logger.warning("cached blob %s unreadable: %s", digest, e)
        return None

    async def body():
        sent = 0
        failed = ""
        try:
            async for chunk in chunks:
                yield chunk
                sent += len(chunk)
            if sent != end - start:
                failed = "cached blob cut short"
                raise StorageError(f"{found.key} ended after {sent} of {end - start} bytes")
        except StorageError as e:
            failed = failed or "cached blob unreadable"
            logger.warning("cached blob %s: %s", digest, e)
            raise
        finally:
            answers.log(caller, app, name, "blob", digest, 502 if failed else status, sent, failed)

    return StreamingHttpResponse(body(), status=status, headers=headers)


async def _shared_fetch(request, caller, app, name: str, digest: str, upstream: Upstream, *, again: bool = True):
    """A blob the cache misses: fetched once for every request that wants it, in any process."""
    source = f"{upstream.registry.pk}/{upstream.repository}"
    try:
        key, claim, ours = await fill.take(upstream.registry.team_id, digest, source)
    except Exception as e:  # the shared cache is down: every request fetches for itself
        logger.warning("no claim on blob %s (%s): fetching it without the cache", digest, type(e).__name__)
        return await _upstream_blob(request, caller, app, name, digest, upstream)
    if ours:
        try:
            response, stack = await open_stream(upstream, "GET", f"blobs/{digest}", {})
        except BaseException as e:
            await fill.release(key, claim, fill.FAILED)
            if isinstance(e, RegistryError | httpx.HTTPError):
                error = e if isinstance(e, RegistryError) else as_registry_error(e)
                return answers.failed(caller, app, name, "blob", digest, error)
            raise
        if response.status_code != 200 or "content-length" not in response.headers:
            await fill.release(key, claim, fill.FAILED)
            return await _upstream_blob(request, caller, app, name, digest, upstream, (response, stack))
        await fill.start(key, claim, upstream, digest, response, stack)
        metrics.CACHE_REQUESTS.labels(cache.BLOB, "miss").inc()
        return _following(caller, app, name, digest, upstream, key, claim)
    if claim.source != source:  # another repository's fetch: this one's may not hold the blob
        return await _upstream_blob(request, caller, app, name, digest, upstream)
    if claim.state == fill.FILLING and claim.size is None:
        claim = await fill.wait_for_size(key, settings.UPSTREAM_FIRST_BYTE_TIMEOUT + settings.UPSTREAM_POOL_WAIT)
    if claim is not None and claim.state == fill.DONE:
        found = await pooled(_found_linked, upstream, digest)
        answer = await _cached_blob(request, caller, app, name, digest, found) if found is not None else None
        if answer is not None:
            return answer
        if again:  # fetched, and evicted since: this request fetches it again
            await fill.forget(key, claim)
            return await _shared_fetch(request, caller, app, name, digest, upstream, again=False)
    if claim is None or claim.state != fill.FILLING:
        return await _upstream_blob(request, caller, app, name, digest, upstream)
    metrics.CACHE_REQUESTS.labels(cache.BLOB, "joined").inc()
    return _following(caller, app, name, digest, upstream, key, claim)


def _found_linked(upstream: Upstream, digest: str) -> cache.Found | None:
    found = cache.find(upstream, digest, cache.BLOB)
    return found if found is not None and found.linked else None


def _following(caller, app, name: str, digest: str, upstream: Upstream, key: str, claim: fill.Claim):
    """The answer of a request that streams a shared fetch as it arrives."""
    headers = {
        **API_VERSION, "Content-Type": answers.BLOB_TYPE, "Docker-Content-Digest": digest, "Content-Length": str(claim.size),
    }  # fmt: skip

    async def from_cache():
        found = await pooled(_found_linked, upstream, digest)
        if found is None:
            raise StorageError(f"{digest} is not in the cache")
        return await _store_chunks(found.key)

    async def body():
        sent = 0
        reason = ""
        try:
            async for chunk in fill.follow(key, claim, from_cache):
                yield chunk
                sent += len(chunk)
        except fill.Lost as e:
            reason = str(e)
            raise
        finally:
            answers.log(caller, app, name, "blob", digest, 502 if reason else 200, sent, reason)

    return StreamingHttpResponse(body(), status=200, headers=headers)


async def _upstream_blob(request, caller, app, name: str, digest: str, upstream: Upstream, opened=None):
    """The blob streamed straight from the upstream, hashed as it passes (`opened`: the
    upstream's response and its stack, when already sent)."""
    headers = {}
    if request.headers.get("Range"):
        headers["Range"] = request.headers["Range"]
    try:
        response, stack = opened or await open_stream(upstream, request.method, f"blobs/{digest}", headers)
    except RegistryError as e:
        return answers.failed(caller, app, name, "blob", digest, e)
    if response.status_code not in (200, 206):
        body = b""
        if response.status_code == 404:
            try:
                body = await answers.read_bounded(response, answers.MAX_ERROR_BODY_BYTES) or b""
            except httpx.HTTPError:
                pass  # the status says enough
        await stack.aclose()
        failure = answers.status_failure(response, "blob", body)
        answers.log(caller, app, name, "blob", digest, failure.status_code, 0, f"upstream {response.status_code}")
        return failure
    out_headers = {
        **API_VERSION, **answers.headers_from(response), "Content-Type": answers.BLOB_TYPE, "Docker-Content-Digest": digest
    }  # fmt: skip
    if request.method == "HEAD":
        await stack.aclose()
        return HttpResponse(status=response.status_code, headers=out_headers)
    verify = response.status_code == 200
    expected = int(response.headers.get("content-length") or -1)

    async def body():
        sent = 0
        reason = ""
        hasher = hashlib.sha256() if verify else None
        # sha256 (~0.75 s/GiB here, OpenSSL's own speed) would be half the event loop's work.
        # hashlib releases the GIL, so chunks are hashed in a worker thread, a batch of at least
        # HASH_BATCH_BYTES at a time, in order, one batch at a time, while the loop moves bytes;
        # the rest inline at the end. bench/proxy.py: 1 GiB GET ~1.5x faster.
        loop = asyncio.get_running_loop()
        hashing: asyncio.Future | None = None
        batch: list[bytes] = []
        batch_bytes = 0
        held: bytes | None = None
        try:
            async with stack:
                async for chunk in response.aiter_raw():
                    # The new chunk goes to the hashing thread first, so it is hashed while the
                    # loop sends the one before (the other order was ~15% slower).
                    if hasher is not None:
                        batch.append(chunk)
                        batch_bytes += len(chunk)
                        if batch_bytes >= HASH_BATCH_BYTES:
                            if hashing is not None:
                                await hashing
                            hashing = loop.run_in_executor(None, _hash_all, hasher, batch)
                            batch, batch_bytes = [], 0
                    if held is not None:
                        yield held
                        sent += len(held)
                    held = chunk
                if hashing is not None:
                    await hashing
                if hasher is not None:
                    _hash_all(hasher, batch)
                if expected >= 0 and sent + len(held or b"") != expected:
                    reason = "truncated"
                    raise RegistryError("upstream blob was cut short", ErrorCategory.INVALID_RESPONSE)
                if hasher is not None and "sha256:" + hasher.hexdigest() != digest:
                    reason = "digest mismatch"
                    logger.warning("digest mismatch on blob %s@%s from registry %s", name, digest, upstream.registry.pk)
                    raise RegistryError("upstream blob does not match its digest", ErrorCategory.INVALID_RESPONSE)
                if held is not None:
                    yield held  # the last chunk goes out only once the digest checks out
                    sent += len(held)
        except httpx.HTTPError as e:
            reason = reason or as_registry_error(e).category.value
            raise
        finally:
            answers.log(caller, app, name, "blob", digest, 200 if not reason else 502, sent, reason)

    return StreamingHttpResponse(body(), status=response.status_code, headers=out_headers)


def _hash_all(hasher, chunks: list[bytes]) -> None:
    for chunk in chunks:
        hasher.update(chunk)
