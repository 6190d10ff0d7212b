"""A customer's download of an air-gap bundle: which release (the channel's current one, or one
ever promoted to it), whether its bundle is ready, and the answer: streamed from storage with
Range support (resume: `curl -C -`), or a redirect to a short-lived presigned URL when the
storage is S3. Every answer given to a known license lands in its download log.

Ranges follow RFC 9110 §14: one range `a-b`, `a-` or `-n` answers 206 with Content-Range; one
that starts past the end answers 416 with `Content-Range: bytes */SIZE`; several ranges answer
the whole file (a server may ignore Range, §14.2, and a multipart body helps no client here);
an `If-Range` that does not match the ETag (or Last-Modified) answers the whole file too.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import connections
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.http import http_date, parse_http_date_safe

from delivery import downloads
from delivery.airgap.bundles import bundle_of
from delivery.airgap.storage import bundle_store
from delivery.models import AirgapBundle, BundleStatus, DownloadKind
from licenses import releases
from licenses.models import License, Release
from portal.objectstore import StorageError

logger = logging.getLogger(__name__)

PATH = "/customer/v1/airgap/"
LATEST_PATH = PATH + "latest.tar"
RETRY_BUILDING = 30  # seconds: a build reports progress about that often
RETRY_STORAGE = 60
_RANGE_SPEC = re.compile(r"^(\d*)-(\d*)$")


def customer_path(sequence: int | None = None) -> str:
    return f"{PATH}{sequence}.tar" if sequence is not None else LATEST_PATH


class Unavailable(Exception):
    """No bundle to send; `status`, `code` and `message` are the customer's answer."""

    def __init__(
        self, status: int, code: str, message: str, *, release: Release | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.release, self.retry_after = release, retry_after


# --- which release, which bundle --------------------------------------------------------------


def customer_release(license: License, sequence: int | None) -> Release:
    """The channel's current release, or release `sequence` if it was ever promoted there."""
    channel = license.channel
    release = releases.channel_release(channel, sequence)
    if release is not None:
        return release
    if sequence is None:
        message = (
            f"No release of {license.app.slug} has been promoted to channel “{channel.name}” yet, so there "
            "is no air-gap bundle to download; ask your vendor."
        )
    else:
        message = f"Release {sequence} of {license.app.slug} was never promoted to channel “{channel.name}”."
    raise Unavailable(404, "not_found", message)


def progress_percent(bundle: AirgapBundle) -> int:
    """How far a build is: by bytes once their total is known, by images before."""
    if bundle.bytes_total:
        return min(100, (bundle.bytes_done + bundle.bytes_reused) * 100 // bundle.bytes_total)
    if bundle.images_total:
        return min(100, bundle.images_done * 100 // bundle.images_total)
    return 0


def ready_bundle(release: Release) -> AirgapBundle:
    """The release's bundle when it can be downloaded; Unavailable says why not."""
    bundle = bundle_of(release)
    n = release.sequence
    if bundle is None:
        raise Unavailable(404, "no_bundle", f"Release {n} has no air-gap bundle; ask your vendor.", release=release)
    bundle.release = release  # its file name reads the release's app
    if bundle.status in (BundleStatus.QUEUED, BundleStatus.BUILDING):
        state = "queued to be built" if bundle.status == BundleStatus.QUEUED else "being built"
        raise Unavailable(
            503,
            "bundle_not_ready",
            f"The air-gap bundle of release {n} is {state} ({progress_percent(bundle)} %); try again in a few minutes.",
            release=release,
            retry_after=RETRY_BUILDING,
        )
    if bundle.status == BundleStatus.FAILED:
        raise Unavailable(
            404,
            "no_bundle",
            f"The air-gap bundle of release {n} could not be built; ask your vendor to build it again.",
            release=release,
        )
    return bundle


# --- ranges -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as Content-Range writes it

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class Unsatisfiable:
    """A single range that starts past the end of the file (or asks for the last 0 bytes)."""


UNSATISFIABLE = Unsatisfiable()


def parse_range(header: str, size: int) -> ByteRange | Unsatisfiable | None:
    """The one range of a `Range: bytes=…` header; None: send the whole file (no header, a
    unit other than bytes, a malformed header, or several ranges)."""
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or not spec:
        return None
    specs = [s.strip() for s in spec.split(",")]
    if len(specs) != 1:
        return None
    match = _RANGE_SPEC.match(specs[0])
    if match is None or match.group(0) == "-":
        return None
    first, last = match.groups()
    if not first:  # -n: the last n bytes
        suffix = int(last)
        if suffix == 0:
            return UNSATISFIABLE
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    if last and int(last) < start:
        return None  # not a valid range-spec: ignored (RFC 9110 §14.1.1)
    if start >= size:
        return UNSATISFIABLE
    return ByteRange(start, min(int(last), size - 1) if last else size - 1)


def if_range_allows(request, etag: str, last_modified: str | None) -> bool:
    """Whether a Range applies: no If-Range, or one naming this file's ETag (strong
    comparison) or its exact Last-Modified date."""
    value = request.headers.get("If-Range")
    if value is None:
        return True
    value = value.strip()
    if value.startswith(('"', "W/")):
        return value == etag
    asked = parse_http_date_safe(value)
    return last_modified is not None and asked is not None and asked == parse_http_date_safe(last_modified)


# --- the answer -------------------------------------------------------------------------------


def bundle_headers(bundle: AirgapBundle) -> dict[str, str]:
    """What identifies the file: its name, its digest (RFC 9530 Repr-Digest, and in hex)."""
    digest = base64.b64encode(bytes.fromhex(bundle.sha256)).decode()
    headers = {
        "Content-Type": "application/x-tar",
        "Content-Disposition": f'attachment; filename="{bundle.filename}"',
        "Accept-Ranges": "bytes",
        "ETag": f'"{bundle.sha256}"',
        "Repr-Digest": f"sha-256=:{digest}:",
        "X-Bundle-Sha256": bundle.sha256,
        # Licensed content: no shared cache keeps it.
        "Cache-Control": "private, no-store",
    }
    if bundle.finished_at:
        headers["Last-Modified"] = http_date(bundle.finished_at.timestamp())
    return headers


def _check_stored(bundle: AirgapBundle, release: Release, store) -> None:
    """The stored file is there, whole; otherwise a 503 the vendor finds in the log."""
    n = release.sequence
    try:
        stat = store.stat(bundle.storage_key) if bundle.storage_key else None
    except StorageError as e:
        logger.error("air-gap bundle %s (release %s): storage unreadable: %s", bundle.pk, bundle.release_id, e)
        raise Unavailable(
            503, "storage_unavailable",
            f"The air-gap bundle of release {n} cannot be read from storage right now; try again later.",
            release=release, retry_after=RETRY_STORAGE,
        ) from None  # fmt: skip
    if stat is None or stat.size != bundle.size:
        found = "missing" if stat is None else f"{stat.size} bytes, not {bundle.size}"
        logger.error(
            "air-gap bundle %s (release %s) is %s in storage %r at %s",
            bundle.pk, bundle.release_id, found, store, bundle.storage_key or "(no key)",
        )  # fmt: skip
        raise Unavailable(
            503, "storage_unavailable",
            f"The air-gap bundle of release {n} is missing from the portal's storage; your vendor has to "
            "build it again. Try again later or ask your vendor.",
            release=release, retry_after=RETRY_STORAGE,
        )  # fmt: skip


def bundle_response(request, license: License, sequence: int | None) -> HttpResponse:
    """The license's bundle of release `sequence` (None: the channel's current release) as
    an answer to GET or HEAD; raises Unavailable (the caller logs and answers it)."""
    release = customer_release(license, sequence)
    bundle = ready_bundle(release)
    store = bundle_store()
    _check_stored(bundle, release, store)
    headers = bundle_headers(bundle)
    size = bundle.size or 0

    def log(status: int, sent: int = 0) -> int:
        row = downloads.download_record(
            request, license, kind=DownloadKind.AIRGAP, status=status, release=release, bytes_sent=sent
        )
        return row.pk

    if store.kind == "s3":
        try:
            url = store.presigned_url(
                bundle.storage_key, expires_in=settings.AIRGAP_LINK_SECONDS, filename=bundle.filename
            )
        except StorageError as e:
            logger.error("air-gap bundle %s: no presigned URL: %s", bundle.pk, e)
            raise Unavailable(
                503, "storage_unavailable",
                f"The air-gap bundle of release {release.sequence} cannot be read from storage right now; "
                "try again later.",
                release=release, retry_after=RETRY_STORAGE,
            ) from None  # fmt: skip
        # The bucket serves the bytes, ranges included; the digest headers go with the redirect.
        keep = ("ETag", "Repr-Digest", "X-Bundle-Sha256", "Cache-Control")
        response = HttpResponse(status=302, headers={k: headers[k] for k in keep})
        response["Location"] = url
        log(302, size)
        return response

    wanted = parse_range(request.headers.get("Range", ""), size)
    if wanted is not None and not if_range_allows(request, headers["ETag"], headers.get("Last-Modified")):
        wanted = None
    if isinstance(wanted, Unsatisfiable):
        log(416)
        return HttpResponse(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
    status, part = (206, wanted) if wanted is not None else (200, ByteRange(0, size - 1))
    headers["Content-Length"] = str(part.length)
    if status == 206:
        headers["Content-Range"] = f"bytes {part.start}-{part.end}/{size}"
    if request.method == "HEAD":
        log(status)
        return HttpResponse(status=status, headers=headers)
    try:
        chunks = store.read(bundle.storage_key, part.start, part.end + 1)
    except StorageError as e:  # gone between the stat and now
        logger.error("air-gap bundle %s: reading failed: %s", bundle.pk, e)
        raise Unavailable(
            503, "storage_unavailable",
            f"The air-gap bundle of release {release.sequence} is missing from the portal's storage; "
            "try again later or ask your vendor.",
            release=release, retry_after=RETRY_STORAGE,
        ) from None  # fmt: skip
    download_id = log(status)

    def sent(count: int) -> None:
        downloads.download_sent(download_id, count)

    # Under ASGI an async iterator (Django would read a sync one whole into memory first);
    # under WSGI (the test client, runserver) a sync one.
    if isinstance(request, ASGIRequest):
        return ClosingStream(_async_body(chunks, sent), status=status, headers=headers)
    return StreamingHttpResponse(_sync_body(chunks, sent), status=status, headers=headers)


class ClosingStream(StreamingHttpResponse):
    """A streaming answer that closes its async generator as soon as the client hangs up.
    Django 5.2 then closes only its own wrapper around it, leaving ours to the garbage
    collector: the row of a cut download kept 0 bytes for seconds, sometimes for good."""

    def __init__(self, body: AsyncIterator[bytes], **kwargs) -> None:
        super().__init__(body, **kwargs)
        self.body = body

    async def __aiter__(self):
        try:
            async for part in self.body:
                yield part
        finally:
            await self.body.aclose()


def _sync_body(chunks: Iterator[bytes], sent: Callable[[int], None]) -> Iterator[bytes]:
    count = 0
    try:
        for chunk in chunks:
            yield chunk
            count += len(chunk)
    finally:
        getattr(chunks, "close", lambda: None)()
        sent(count)


async def _async_body(chunks: Iterator[bytes], sent: Callable[[int], None]) -> AsyncIterator[bytes]:
    """The file read in a worker thread chunk by chunk (1 MiB each), so memory stays flat and
    the event loop never waits on the disk; what was sent is recorded even when the client
    hangs up (Django then cancels the request's task and closes this generator)."""
    loop = asyncio.get_running_loop()
    count = 0

    def finish() -> None:
        try:
            getattr(chunks, "close", lambda: None)()
            sent(count)
        finally:
            connections.close_all()  # a pool thread: it keeps no connection open

    try:
        while True:
            chunk = await loop.run_in_executor(None, next, chunks, None)
            if chunk is None:
                break
            yield chunk
            count += len(chunk)
    finally:
        # Submitted before the first await here: a cancellation arriving now (the client hung
        # up right after the last byte) interrupts the wait, not the row's update.
        await asyncio.shield(loop.run_in_executor(None, finish))
