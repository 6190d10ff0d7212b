"""The pull log, written in batches by one background thread per process.

Writing each manifest or blob request's row as it happened cost the proxy ~2 ms of manifest
latency (a thread hop, a license look-up, an INSERT and an UPDATE per request, competing with
the next request for the GIL). Here a request only appends to a queue; the writer gathers what
arrives within FLUSH_SECONDS and writes it with one look-up, one bulk INSERT and one UPDATE per
license. A pull shows up in the log within about a second; rows still queued when the process
exits are written on the way out.

The writer also counts each batch in the metrics (portal/metrics.py: pulls and bytes by app and
result, license denials by reason): every request the proxy and the token service answer
passes through here once, and counting here costs the request nothing but its queued row.

And it keeps the pull limit each upstream last stated (Docker Hub's `ratelimit-*` headers) on its
registry's row: a request only leaves the latest sighting per registry here, and each pass
writes those with one UPDATE per registry, newest sighting wins across processes.
"""

from __future__ import annotations

import atexit
import logging
import queue
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from licenses.models import App, Refusal
from portal import metrics
from portal.db import release_connections
from portal.lru import LRU
from registries.clients.oci import RateLimit
from registries.upstream_limits import registry_rate_limit_record

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 0.5
MAX_BATCH = 500


@dataclass(frozen=True)
class Entry:
    license_uid: str
    event: object  # an unsaved licenses.models.PullEvent without its license


_queue: queue.SimpleQueue[Entry] = queue.SimpleQueue()
_queued = threading.Event()  # set when rows wait in the queue
_writer: threading.Thread | None = None
_writer_lock = threading.Lock()
# Held while a batch is out of the queue but not yet saved, so a flush (at exit) waits for the
# writer's batch in flight instead of finding an empty queue and returning before it is saved.
_writing = threading.Lock()
# The metrics' `app` label by app id: a slug is set once (licenses.services.app_create) and a
# deleted app's is never given to another.
_app_slugs: LRU[int, str] = LRU(4096)
# Registry id -> the latest pull limit its upstream stated and when; taken whole by each pass, so
# it holds at most one entry per registry the proxy talked to within FLUSH_SECONDS.
_rate_limits: dict[int, tuple[RateLimit, datetime]] = {}
_rate_limits_lock = threading.Lock()
# A refusal's reason is a license denial's label only when it is one of the pull log's words.
DENIAL_REASONS = frozenset(value for name, value in vars(Refusal).items() if name.isupper())


def record(license_uid: str, event) -> None:
    """Queue an unsaved PullEvent for the license with this uid; never blocks, never raises."""
    _queue.put(Entry(license_uid, event))
    _queued.set()
    _ensure_writer()


def record_request(
    license_uid: str,
    app_id: int,
    repository: str,
    kind: str,
    reference: str,
    status: int,
    size: int = 0,
    reason: str = "",
) -> None:
    """Queue the row of one request (app_id: the license's app)."""
    from licenses.models import PullEvent

    event = PullEvent(
        app_id=app_id, repository=repository[:300], kind=kind, reference=reference[:200],
        status=status, bytes=size, reason=reason[:200], created_at=timezone.now(),
    )  # fmt: skip
    record(license_uid, event)


def record_rate_limit(registry_id: int, rate_limit: RateLimit) -> None:
    """Note the pull limit an upstream just stated for this registry; never blocks, never raises."""
    with _rate_limits_lock:
        _rate_limits[registry_id] = (rate_limit, timezone.now())
    _queued.set()
    _ensure_writer()


def _write_rate_limits() -> None:
    with _rate_limits_lock:
        seen = dict(_rate_limits)
        _rate_limits.clear()
    if not seen:
        return
    try:
        for registry_id, (rate_limit, at) in seen.items():
            registry_rate_limit_record(registry_id=registry_id, rate_limit=rate_limit, seen_at=at)
    except Exception:
        logger.exception("could not record the upstream rate limits of %s registries", len(seen))
    finally:
        release_connections()


def _ensure_writer() -> None:
    global _writer
    if _writer is not None and _writer.is_alive():
        return
    with _writer_lock:
        if _writer is None or not _writer.is_alive():
            _writer = threading.Thread(target=_run, name="pull-log-writer", daemon=True)
            _writer.start()


def _take() -> list[Entry]:
    batch: list[Entry] = []
    while len(batch) < MAX_BATCH:
        try:
            batch.append(_queue.get_nowait())
        except queue.Empty:
            break
    return batch


def _run() -> None:
    # Rows stay in the queue while the writer waits, so a flush at exit finds them all.
    while True:
        _queued.wait()
        time.sleep(FLUSH_SECONDS)  # let the rest of this pull's requests join the batch
        _queued.clear()  # before taking: a row queued from now on sets it again
        _drain()


def _drain() -> None:
    _write_rate_limits()
    while True:
        with _writing:
            batch = _take()
            if not batch:
                return
            count(batch)
            write(batch)


def flush() -> None:
    """Write everything queued so far, in this thread (at exit, and for tests), after any
    batch the writer thread is saving at this moment."""
    _drain()


def count(batch: list[Entry]) -> None:
    """Add a batch to the metrics, whether or not its rows can be saved; never raises."""
    try:
        slugs = _slugs({entry.event.app_id for entry in batch})
    except Exception:
        logger.exception("could not look up app slugs for the metrics")
        slugs = {}
    pulls: dict[tuple[str, str], int] = defaultdict(int)
    sent: dict[tuple[str, str], int] = defaultdict(int)
    denials: dict[str, int] = defaultdict(int)
    for entry in batch:
        event = entry.event
        labels = (slugs.get(event.app_id) or "unknown", metrics.result_of(event.status))
        if event.kind == "manifest":
            pulls[labels] += 1
        if event.bytes:
            sent[labels] += event.bytes
        if event.status in (401, 403) and event.reason in DENIAL_REASONS:
            denials[event.reason] += 1
    for labels, n in pulls.items():
        metrics.PULLS.labels(*labels).inc(n)
    for labels, n in sent.items():
        metrics.PULL_BYTES.labels(*labels).inc(n)
    for reason, n in denials.items():
        metrics.LICENSE_DENIALS.labels(reason).inc(n)


def _slugs(app_ids: set[int]) -> dict[int, str | None]:
    missing = [pk for pk in app_ids if pk not in _app_slugs]
    if missing:
        for pk, slug in App.objects.filter(pk__in=missing).values_list("pk", "slug"):
            _app_slugs[pk] = slug
    return {pk: _app_slugs.get(pk) for pk in app_ids}


def write(batch: list[Entry]) -> None:
    """Save a batch: rows of licenses deleted meanwhile are dropped. The pull log never
    breaks a pull, so a failure is logged, not raised."""
    from licenses.models import License, PullEvent

    if not batch:
        return
    try:
        uids = {entry.license_uid for entry in batch}
        pks = {str(uid): pk for uid, pk in License.objects.filter(uid__in=uids).values_list("uid", "pk")}
        events = []
        last_pull: dict[int, object] = {}
        for entry in batch:
            pk = pks.get(entry.license_uid)
            if pk is None:
                continue
            event = entry.event
            event.license_id = pk
            events.append(event)
            if event.status in (200, 206) and (pk not in last_pull or event.created_at > last_pull[pk]):
                last_pull[pk] = event.created_at
        # One transaction: a reader never sees a batch's rows without the last pull time they set.
        with transaction.atomic():
            PullEvent.objects.bulk_create(events)
            for pk, at in last_pull.items():
                # A batch written late never moves the time back (Coalesce: SQLite's max() of NULL is NULL).
                License.objects.filter(pk=pk).update(last_pull_at=Greatest(Coalesce("last_pull_at", at), at))
    except Exception:
        logger.exception("could not record %s pull events", len(batch))
    finally:
        release_connections()


atexit.register(flush)
