"""The proxy's pull-through cache: what it holds and where (the database and the storage).

Blobs and manifests are kept by digest, per team: the storage key starts `team-<id>/` and every
look-up names the team of the upstream registry the license's app pulls from, so no team reaches
another team's bytes, whatever digest it knows. Within a team an object is served for a
repository only when that upstream repository served it (`CachedLink`): a license for one
repository cannot fetch another's layers by digest. Bytes enter the storage only after their
digest checked out, and a row appears only once they are there.

The storage is portal/objectstore.py (PROXY_CACHE_URL): files under var/ or one bucket for every
web process on every machine. PROXY_CACHE_MAX_BYTES bounds it: each new object's arrival
removes the least recently used until the total fits. A row's bytes go with it (evicted, its
team deleted, or the one registry that served it deleted), in whichever process deletes it;
bytes left without a row (a process died between the two steps of `add`) are swept by a beat
task. A tag's digest is remembered in the database (`CachedTag`) and trusted for PROXY_TAG_TTL
seconds; after that it is asked again, and kept as the answer while the upstream is down.

Everything here is synchronous (database and storage calls); the views call it from a worker
thread. The fetching of a blob by one request while others wait is delivery/proxy/fill.py.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery, Sum
from django.db.models.signals import post_delete
from django.utils import timezone

from delivery.models import CachedLink, CachedObject, CachedTag
from delivery.routing import Upstream
from portal.cache import shared_cache
from portal.objectstore import ObjectStore, StorageError, store_from_url
from registries.models import ExternalRegistry

logger = logging.getLogger(__name__)

TOUCH_SECONDS = 60  # last_used_at moves at most this often per object
EVICT_LOCK_SECONDS = 60
EVICT_BATCH = 200
# Bytes without a row this old are left over (a process died between storing them and recording
# them, or the record failed); younger ones may be an `add` between its two steps.
ORPHAN_SECONDS = 3600
SWEEP_BATCH = 500
_OBJECT_KEY = re.compile(r"^team-(\d+)/([a-z0-9]+)/([0-9a-f]{2})/(\3[0-9a-f]{30,126})(\.partial)?$")
BLOB = CachedObject.BLOB
MANIFEST = CachedObject.MANIFEST


def enabled() -> bool:
    return settings.PROXY_CACHE_MAX_BYTES > 0


@cache
def _store(url: str, root: str) -> ObjectStore:
    return store_from_url(url, default_root=Path(root))


def store() -> ObjectStore:
    """One store per setting value (tests change the setting; a boto3 client is reused)."""
    return _store(settings.PROXY_CACHE_URL, str(settings.VAR_DIR / "proxy-cache"))


def read_all(key: str) -> bytes:
    """A small object's bytes (a manifest)."""
    return b"".join(store().read(key))


def object_key(team_id: int, digest: str) -> str:
    algorithm, _, hex_digest = digest.partition(":")
    return f"team-{team_id}/{algorithm}/{hex_digest[:2]}/{hex_digest}"


@dataclass(frozen=True)
class Found:
    """A cached object as a request may use it. `linked`: the request's upstream repository
    served it; an object known only from another repository of the team is served once the
    upstream confirms this repository has it too (then `link` records that)."""

    pk: int
    team_id: int
    digest: str
    size: int
    media_type: str
    linked: bool

    @property
    def key(self) -> str:
        return object_key(self.team_id, self.digest)


def find(upstream: Upstream, digest: str, kind: str) -> Found | None:
    """The team's cached object with this digest, and whether `upstream` served it. Marks it
    used (at most once a minute), so what is pulled stays and what is not goes first."""
    if not enabled():
        return None
    row = _object_rows(upstream, kind).filter(digest=digest).values(*_FOUND_FIELDS).first()
    return _found(upstream, row, digest) if row is not None else None


def find_by_tag(upstream: Upstream, tag: str) -> tuple[Found | None, TagAnswer | None]:
    """The cached manifest the tag named when last asked, and that answer with whether it is
    recent enough to trust; (None, None) unless both are cached. One query: every pull by tag
    starts with it."""
    if not enabled():
        return None, None
    named = CachedTag.objects.filter(registry_id=upstream.registry.pk, repository=upstream.repository, tag=tag)
    row = (
        _object_rows(upstream, MANIFEST)
        .filter(digest=Subquery(named.values("digest")[:1]))
        .annotate(asked_at=Subquery(named.values("fetched_at")[:1]))
        .values(*_FOUND_FIELDS, "digest", "asked_at")
        .first()
    )
    if row is None:
        return None, None
    fresh = row["asked_at"] > timezone.now() - timedelta(seconds=settings.PROXY_TAG_TTL)
    return _found(upstream, row, row["digest"]), TagAnswer(row["digest"], fresh)


_FOUND_FIELDS = ("pk", "size", "media_type", "last_used_at", "linked")


def _object_rows(upstream: Upstream, kind: str):
    """The team's cached objects of `kind`, each with whether this repository served it."""
    served_here = CachedLink.objects.filter(
        object_id=OuterRef("pk"), registry_id=upstream.registry.pk, repository=upstream.repository
    )
    return CachedObject.objects.filter(team_id=upstream.registry.team_id, kind=kind).annotate(
        linked=Exists(served_here)
    )


def _found(upstream: Upstream, row: dict, digest: str) -> Found:
    now = timezone.now()
    if row["last_used_at"] < now - timedelta(seconds=TOUCH_SECONDS):
        CachedObject.objects.filter(pk=row["pk"]).update(last_used_at=now)
    return Found(row["pk"], upstream.registry.team_id, digest, row["size"], row["media_type"], row["linked"])


def link(upstream: Upstream, found: Found) -> None:
    """Record that `upstream`'s repository has this object too."""
    try:
        with transaction.atomic():
            CachedLink.objects.get_or_create(
                object_id=found.pk, registry_id=upstream.registry.pk, repository=upstream.repository
            )
    except IntegrityError:
        pass  # the object was evicted meanwhile: the next request fetches it again


def add(upstream: Upstream, digest: str, kind: str, path: Path, size: int, media_type: str = "") -> None:
    """Move a verified file into the storage under the team's key, then record it and link it to
    `upstream`; then keep the cache within its budget. The file is gone afterwards. Never raises
    for the storage or the database: the request it came from was served either way."""
    team_id = upstream.registry.team_id
    try:
        store().put_file(object_key(team_id, digest), path, move=True)
        with transaction.atomic():
            row, created = CachedObject.objects.get_or_create(
                team_id=team_id, digest=digest,
                defaults={"kind": kind, "size": size, "media_type": media_type},
            )  # fmt: skip
            CachedLink.objects.get_or_create(
                object=row, registry_id=upstream.registry.pk, repository=upstream.repository
            )
    except (StorageError, OSError) as e:
        logger.warning("could not keep %s %s in the proxy cache: %s", kind, digest, e)
        return
    except Exception:
        logger.exception("could not record %s %s in the proxy cache", kind, digest)
        return
    finally:
        Path(path).unlink(missing_ok=True)
    if created:
        evict()


def add_bytes(upstream: Upstream, digest: str, kind: str, body: bytes, media_type: str = "") -> None:
    """`add` for a body already in memory (a manifest)."""
    staging = staging_dir()
    path = staging / f"{kind}-{digest.partition(':')[2]}-{secrets.token_hex(6)}"  # one per caller, in any process
    try:
        path.write_bytes(body)
    except OSError as e:
        logger.warning("could not stage %s %s for the proxy cache: %s", kind, digest, e.strerror)
        return
    add(upstream, digest, kind, path, len(body), media_type)


def staging_dir() -> Path:
    path = Path(settings.PROXY_CACHE_STAGING_DIR)
    path.mkdir(parents=True, exist_ok=True)
    return path


def total_bytes() -> int:
    return CachedObject.objects.aggregate(total=Sum("size"))["total"] or 0


def evict(budget: int | None = None) -> int:
    """Remove the least recently used objects until the cache holds at most `budget` bytes
    (PROXY_CACHE_MAX_BYTES). One process evicts at a time (a lock in the shared cache); the
    others skip, as the one evicting reaches the same total. Returns the objects removed."""
    # Imported here: every process loads this module at start-up (connect_signals), and the
    # metrics module leaves a file in PROMETHEUS_MULTIPROC_DIR for each process that loads it.
    from portal import metrics

    budget = settings.PROXY_CACHE_MAX_BYTES if budget is None else budget
    lock = "proxy-cache:evict"
    try:
        if not shared_cache().add(lock, 1, timeout=EVICT_LOCK_SECONDS):
            return 0
    except Exception:
        logger.warning("shared cache unavailable; evicting from the proxy cache without its lock")
        lock = ""
    removed = 0
    try:
        excess = total_bytes() - budget
        while excess > 0:
            oldest = list(CachedObject.objects.order_by("last_used_at", "pk").values_list("pk", "size")[:EVICT_BATCH])
            if not oldest:
                break
            chosen: dict[int, int] = {}  # pk: size
            for pk, size in oldest:
                if excess <= 0:
                    break
                chosen[pk] = size
                excess -= size
            # The rows go first (post_delete removes the bytes): a request that found a row a
            # moment ago still reads the file it opened, and no new request finds the row.
            _, deleted = CachedObject.objects.filter(pk__in=chosen).delete()
            gone = deleted.get(CachedObject._meta.label, 0)  # another process may have taken some
            if not gone:
                break
            removed += gone
            metrics.CACHE_EVICTIONS.inc(gone)
            metrics.CACHE_EVICTED_BYTES.inc(sum(chosen.values()))
    finally:
        if lock:
            shared_cache().delete(lock)
    return removed


def sweep_orphans(older_than: float = ORPHAN_SECONDS) -> int:
    """Remove the bytes no row records, written more than `older_than` seconds ago: left by a
    process that died (or whose database call failed) between storing an object and recording
    it, they would hold storage outside PROXY_CACHE_MAX_BYTES for ever; and as old `.partial`
    files of a copy into the folder store that never finished. Only keys shaped as this
    module writes them are touched, so a bucket shared with anything else loses nothing else.
    Returns the objects removed."""
    cutoff = time.time() - older_than
    removed = 0
    batch: dict[tuple[int, str], list[str]] = {}  # (team id, digest): keys
    for entry in store().entries():
        match = _OBJECT_KEY.match(entry.key)
        if match and entry.modified < cutoff:
            team_id, algorithm, _, hex_digest, _ = match.groups()
            batch.setdefault((int(team_id), f"{algorithm}:{hex_digest}"), []).append(entry.key)
        if len(batch) >= SWEEP_BATCH:
            removed += _remove_unrecorded(batch)
            batch = {}
    return removed + _remove_unrecorded(batch)


def _remove_unrecorded(keys: dict[tuple[int, str], list[str]]) -> int:
    recorded = set(
        CachedObject.objects.filter(digest__in={digest for _, digest in keys}).values_list("team_id", "digest")
    )
    removed = 0
    for object_id, names in keys.items():
        for key in names:
            if object_id in recorded and not key.endswith(".partial"):
                continue
            try:
                store().delete(key)
            except StorageError as e:
                logger.warning("could not remove %s from the proxy cache: %s", key, e)
                continue
            logger.info("removed left-over %s from the proxy cache", key)
            removed += 1
    return removed


def connect_signals() -> None:
    """Connected in DeliveryConfig.ready, so every process (a worker, `manage.py`, not only one
    that loaded the proxy's views) removes the bytes of the rows it deletes."""
    post_delete.connect(_remove_bytes, sender=CachedObject, dispatch_uid="proxy-cache-remove-bytes")
    post_delete.connect(_drop_unlinked, sender=ExternalRegistry, dispatch_uid="proxy-cache-registry-deleted")


def _drop_unlinked(sender, instance: ExternalRegistry, **kwargs) -> None:
    """A deleted registry takes the objects only it served (their links went with it), and so
    their bytes; an object another registry of the team served too stays."""
    CachedObject.objects.filter(team_id=instance.team_id, links__isnull=True).delete()


def _remove_bytes(sender, instance: CachedObject, **kwargs) -> None:
    """An object's bytes go with its row (evicted, or its team deleted), once that commits."""
    key = object_key(instance.team_id, instance.digest)

    def remove() -> None:
        try:
            store().delete(key)
        except StorageError as e:
            logger.warning("could not remove %s from the proxy cache: %s", key, e)

    transaction.on_commit(remove)


# --- tags ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TagAnswer:
    digest: str
    fresh: bool  # asked within PROXY_TAG_TTL


def remember_tag(upstream: Upstream, tag: str, digest: str) -> None:
    try:
        CachedTag.objects.update_or_create(
            registry_id=upstream.registry.pk, repository=upstream.repository, tag=tag,
            defaults={"digest": digest, "fetched_at": timezone.now()},
        )  # fmt: skip
    except IntegrityError:
        pass  # another request remembered it at the same moment
