"""One upstream fetch per blob, however many requests miss it at once, in whichever process.

The first request to miss a blob claims it in the shared cache (Redis: SET NX with a lease, the
claim's key names the team and the digest). It opens the upstream request and, once the upstream
answers 200 with a length, hands the body to a background task of its process that writes it to
a staging file, hashing as it goes, and moves it into the cache once the digest checks out. The
task runs to the end even when the client that started it hangs up, so the bytes are not fetched
again by the next pull.

Every request for the blob meanwhile, the one that claimed it included, answers with the length
the upstream stated and streams the staging file as it grows (on another machine, one with another
PORTAL_NODE_NAME, whose disk does not hold that file, it waits for the blob to be in the shared
storage, then streams that). The last piece goes out only once the digest checked out, as with a
blob streamed straight from the upstream: a client never gets all of a blob that does not match
its digest.

The claim says how far the fetch is: `filling` (a size once the upstream answered), `done`
(in the cache) or `failed`. A failed or vanished claim (its process died: the lease lapses)
sends the requests still waiting for headers to the upstream on their own.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
from asgiref.sync import sync_to_async
from django.conf import settings

from delivery.proxy import cache, pieces
from delivery.routing import Upstream
from portal.cache import shared_cache
from portal.db import pooled
from portal.objectstore import StorageError
from portal.outbound.httperrors import as_registry_error

logger = logging.getLogger(__name__)

LEASE_SECONDS = 30  # a claim lapses this long after its process last renewed it
DONE_SECONDS = 30  # how long a finished claim stays, for the requests still reading it
POLL_SECONDS = 0.01  # between looks at a staging file that has not grown
STATE_EVERY_SECONDS = 0.25  # between looks at the claim while waiting
WRITE_BATCH_BYTES = 256 * 1024  # bytes written and hashed per trip to a worker thread

FILLING, DONE, FAILED = "filling", "done", "failed"

SWEEP_EVERY_SECONDS = 3600
ABANDONED_SECONDS = 600  # a staging file not written for this long belongs to a fetch that died

# The running fetches of this process, kept so the event loop does not drop them.
_tasks: set[asyncio.Task] = set()
_swept_at = 0.0


class Lost(Exception):
    """The fetch a request was following failed or vanished after the response began."""


@dataclass
class Claim:
    owner: str
    node: str
    staging: str
    source: str = ""  # "<registry id>/<repository>" fetched from
    state: str = FILLING
    reason: str = ""  # why it failed, in the pull log's words
    size: int | None = None

    def dumps(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def loads(cls, raw: object) -> Claim | None:
        try:
            return cls(**json.loads(raw)) if isinstance(raw, str) else None
        except (ValueError, TypeError):
            return None


def node() -> str:
    """This machine's name (PORTAL_NODE_NAME): a claim made on the same node has its staging file
    on this disk; one made elsewhere is followed through the shared storage."""
    return settings.PORTAL_NODE_NAME


def claim_key(team_id: int, digest: str) -> str:
    return f"proxy-cache:fill:{team_id}:{digest}"


def _read(key: str) -> Claim | None:
    return Claim.loads(shared_cache().get(key))


def _write(key: str, claim: Claim, ttl: int) -> None:
    shared_cache().set(key, claim.dumps(), timeout=ttl)


def _take(key: str, claim: Claim) -> bool:
    return bool(shared_cache().add(key, claim.dumps(), timeout=LEASE_SECONDS))


read_claim = sync_to_async(_read, thread_sensitive=False)
write_claim = sync_to_async(_write, thread_sensitive=False)


async def take(team_id: int, digest: str, source: str) -> tuple[str, Claim, bool]:
    """(key, claim, ours): the fetch claimed for this request, or the claim another holds."""
    key = claim_key(team_id, digest)
    mine = Claim(
        owner=secrets.token_hex(8),
        node=node(),
        source=source,
        staging=str(cache.staging_dir() / f"blob-{digest.partition(':')[2]}-{secrets.token_hex(6)}"),
    )
    for _ in range(3):
        if await sync_to_async(_take, thread_sensitive=False)(key, mine):
            return key, mine, True
        held = await read_claim(key)
        if held is not None:
            return key, held, False
        # it lapsed between the two calls: try again
    return key, Claim(owner="", node="", staging="", state=FAILED), False


async def forget(key: str, claim: Claim) -> None:
    """Drop a finished claim whose blob is no longer cached, so the next request fetches it."""
    held = await read_claim(key)
    if held is not None and held.owner == claim.owner and held.state == DONE:
        await sync_to_async(shared_cache().delete, thread_sensitive=False)(key)


async def release(key: str, claim: Claim, state: str, reason: str = "") -> None:
    claim.state, claim.reason = state, reason
    try:
        await write_claim(key, claim, DONE_SECONDS if state == DONE else 5)
    except Exception:
        logger.warning("shared cache unavailable: the fetch of %s ended as %s unannounced", key, state)


async def start(
    key: str, claim: Claim, upstream: Upstream, digest: str, response: httpx.Response, stack: AsyncExitStack
) -> None:
    """Fetch the body of `response` (a 200 with its Content-Length) into the cache in a task of
    this event loop. The staging file exists and the size is announced when this returns."""
    claim.size = int(response.headers["content-length"])
    try:
        f = await asyncio.get_running_loop().run_in_executor(None, open, claim.staging, "wb")
        await write_claim(key, claim, LEASE_SECONDS)
    except BaseException:
        await stack.aclose()
        await release(key, claim, FAILED)
        raise
    task = asyncio.get_running_loop().create_task(_fetch(key, claim, upstream, digest, response, stack, f))
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    global _swept_at
    if time.monotonic() - _swept_at > SWEEP_EVERY_SECONDS:
        _swept_at = time.monotonic()
        asyncio.get_running_loop().run_in_executor(None, sweep_staging, Path(claim.staging).parent)


def sweep_staging(folder: Path, older_than: float = ABANDONED_SECONDS) -> int:
    """Remove the staging files of fetches that died with their process (a running fetch
    writes its file all the time); each process looks at most once an hour, when it starts a
    fetch. Returns how many went."""
    removed = 0
    cutoff = time.time() - older_than
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        try:
            if entry.is_file() and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            continue  # gone meanwhile
    if removed:
        logger.info("removed %s abandoned staging files from %s", removed, folder)
    return removed


async def _fetch(key: str, claim: Claim, upstream: Upstream, digest: str, response, stack: AsyncExitStack, out) -> None:
    path = Path(claim.staging)
    loop = asyncio.get_running_loop()
    hasher = hashlib.sha256()
    written = 0
    renewed = time.monotonic()
    state, reason = FAILED, "fetch failed"
    try:
        async with stack:
            with out as f:
                batch: list[bytes] = []
                size = 0
                async for chunk in response.aiter_raw():
                    batch.append(chunk)
                    size += len(chunk)
                    if size >= WRITE_BATCH_BYTES:
                        await loop.run_in_executor(None, _write_batch, f, hasher, batch)
                        written += size
                        batch, size = [], 0
                    if time.monotonic() - renewed > LEASE_SECONDS / 3:
                        renewed = time.monotonic()
                        await sync_to_async(shared_cache().touch, thread_sensitive=False)(key, LEASE_SECONDS)
                await loop.run_in_executor(None, _write_batch, f, hasher, batch)
                written += size
        if written != claim.size:
            reason = "truncated"
            logger.warning("blob %s from registry %s was cut short", digest, upstream.registry.pk)
        elif "sha256:" + hasher.hexdigest() != digest:
            reason = "digest mismatch"
            logger.warning("digest mismatch on blob %s from registry %s", digest, upstream.registry.pk)
        else:
            await pooled(cache.add, upstream, digest, cache.BLOB, path, written)
            state = DONE
    except (httpx.HTTPError, OSError) as e:
        reason = as_registry_error(e).category.value if isinstance(e, httpx.HTTPError) else "could not be written"
        logger.warning("fetching blob %s from registry %s failed: %s", digest, upstream.registry.pk, type(e).__name__)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("fetching blob %s into the proxy cache failed", digest)
    finally:
        if state != DONE:
            path.unlink(missing_ok=True)
        await release(key, claim, state, "" if state == DONE else reason)


def _write_batch(f, hasher, batch: list[bytes]) -> None:
    for chunk in batch:
        hasher.update(chunk)
        f.write(chunk)
    f.flush()


async def wait_for_size(key: str, timeout: float) -> Claim | None:
    """The claim once its size is known or it ended; None if it vanished or the wait ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        claim = await read_claim(key)
        if claim is None or claim.size is not None or claim.state != FILLING:
            return claim
        await asyncio.sleep(POLL_SECONDS * 5)
    return None


async def follow(key: str, claim: Claim, found_later) -> AsyncIterator[bytes]:
    """The blob's bytes as the fetch writes them; the last piece only once it is in the cache.
    `found_later` is an async callable giving the cached object's chunks (for a request that
    comes to a file already moved away, or on another machine). Raises Lost if the fetch fails."""
    size = claim.size or 0
    try:
        f = open(claim.staging, "rb") if claim.node == node() else None  # noqa: SIM115 (closed below)
    except OSError:
        f = None
    if f is None:
        async for chunk in _after_done(key, found_later):
            yield chunk
        return
    sent = 0
    looked = time.monotonic()
    held: bytes | None = None
    # Opened and read on the event loop, in pieces sized as a cached blob's
    # (delivery/proxy/pieces.py), as a cached file is: what the fetch wrote is in the page cache,
    # and a thread trip per piece cost 100 concurrent cold pulls a tenth of their throughput
    # (bench/proxy.py).
    with pieces.sharing(), f:
        while sent + len(held or b"") < size:
            data = f.read(pieces.size())
            if data:
                if held is not None:
                    yield held
                    sent += len(held)
                held = data
                continue
            if time.monotonic() - looked > STATE_EVERY_SECONDS:
                looked = time.monotonic()
                now = await read_claim(key)
                if now is None or now.state == FAILED or now.owner != claim.owner:
                    raise Lost(_why(now))
            await asyncio.sleep(POLL_SECONDS)
        while True:  # every byte is here: the last piece waits for the digest
            now = await read_claim(key)
            if now is not None and now.state == DONE and now.owner == claim.owner:
                break
            if now is None or now.state == FAILED or now.owner != claim.owner:
                raise Lost(_why(now))
            await asyncio.sleep(POLL_SECONDS)
        if held is not None:
            yield held


def _why(claim: Claim | None) -> str:
    """A lost fetch's reason for the pull log: the fetching request's, else that it vanished."""
    if claim is not None and claim.state == FAILED:
        return claim.reason or "fetch failed"
    return "fetch lost"


async def _after_done(key: str, found_later) -> AsyncIterator[bytes]:
    while True:
        claim = await read_claim(key)
        if claim is None or claim.state == FAILED:
            raise Lost(_why(claim))
        if claim.state == DONE:
            break
        await asyncio.sleep(STATE_EVERY_SECONDS)
    try:
        async for chunk in await found_later():
            yield chunk
    except StorageError as e:
        raise Lost(f"the cached blob could not be read: {e}") from None
