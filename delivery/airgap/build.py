"""Building a release's air-gap bundle on a Celery worker (the task: delivery/tasks.py).

Every image of the release is fetched by the digest resolving found, through the same upstream
access as resolving (registries/image_access.py), into the bundle's staging folder
(delivery/airgap/fetch.py); then the tar is written (layout.py: OCI layout, images.json, the
release's files, signed SHA256SUMS) and stored (storage.py). A failure names the image and why;
the staged blobs stay, so building again fetches only what is missing.

The database is read and written on this thread only; each fetch step runs on a thread of its
own with its own event loop, and this thread writes the progress it reports about once a second.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db.models import F
from django.utils import timezone

from accounts.access import Actor
from accounts.services import audit
from delivery import installkit
from delivery.airgap import fetch
from delivery.airgap.layout import BundleWriter
from delivery.airgap.storage import bundle_key, bundle_store
from delivery.models import AirgapBundle, BundleStatus
from licenses.licensefile import signing_key
from licenses.models import Release, ReleaseImage, ReleaseStatus
from portal.objectstore import StorageError
from portal.outbound.errors import ErrorCategory, RegistryError
from portal_cli import bundleformat as fmt
from registries import image_access
from registries.image_access import TRANSIENT, Target

logger = logging.getLogger(__name__)

ACTOR = "air-gap builder"
# One build per bundle at a time. The lock is renewed while the build runs, so a worker killed
# mid-build holds it at most this long.
LOCK_SECONDS = 120
# How often the row's progress is written while blobs stream.
PROGRESS_SECONDS = 1.0


class TryAgain(Exception):
    """The build failed in a way that may pass; the task tries again after `retry_after` s."""

    def __init__(self, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class _Failure(Exception):
    """The build cannot finish: `message` names the image and why."""

    def __init__(self, message: str, transient: bool = False, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.message, self.transient, self.retry_after = message, transient, retry_after


# --- the service --------------------------------------------------------------------------------


def bundle_build(bundle_id: int, *, final: bool = True) -> AirgapBundle | None:
    """Build the bundle; None when another run holds it. A bundle already ready or failed (a
    message delivered again) is returned as it is. With `final` False, a failure that may pass
    leaves the bundle queued and raises TryAgain."""
    with _run_lock(bundle_id) as held:
        if not held:
            logger.info("air-gap bundle %s is being built by another run", bundle_id)
            return None
        bundle = AirgapBundle.objects.select_related("release__app__team").get(pk=bundle_id)
        if bundle.status not in (BundleStatus.QUEUED, BundleStatus.BUILDING):
            return bundle
        return _build(bundle, final=final)


def lock_key(bundle_id: int) -> str:
    return f"airgap-build:{bundle_id}"


@contextmanager
def _run_lock(bundle_id: int) -> Iterator[bool]:
    """The bundle's run lock, renewed every LOCK_SECONDS / 4 until the build ends."""
    key = lock_key(bundle_id)
    try:
        if not cache.add(key, 1, timeout=LOCK_SECONDS):
            yield False
            return
    except Exception:
        logger.warning("cache unavailable; building bundle %s without the run lock", bundle_id)
        yield True
        return
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(LOCK_SECONDS / 4):
            try:
                cache.touch(key, LOCK_SECONDS)
            except Exception:
                logger.warning("cache unavailable; the lock of bundle %s may lapse", bundle_id)

    renewer = threading.Thread(target=renew, name=f"airgap-lock-{bundle_id}", daemon=True)
    renewer.start()
    try:
        yield True
    finally:
        stop.set()
        renewer.join()
        try:
            cache.delete(key)
        except Exception:
            logger.warning("cache unavailable; the lock of bundle %s expires by itself", bundle_id)


def _build(bundle: AirgapBundle, *, final: bool) -> AirgapBundle:
    release = bundle.release
    images = list(release.images.order_by("position"))
    AirgapBundle.objects.filter(pk=bundle.pk).update(
        status=BundleStatus.BUILDING, attempts=F("attempts") + 1, started_at=timezone.now(), finished_at=None,
        error="", images_total=len(images), images_done=0, bytes_total=0, bytes_done=0, bytes_reused=0,
    )  # fmt: skip
    stage = fetch.Stage(Path(settings.AIRGAP_WORK_DIR) / f"bundle-{bundle.pk}")
    progress = fetch.Progress()
    try:
        started = time.monotonic()
        plans = _fetch_all(bundle, release, images, stage, progress)
        fetched = time.monotonic()
        key, sha256, size = _write_and_store(release, images, plans, stage)
        logger.info(
            "air-gap bundle %s: %s bytes fetched (%s reused) in %.1f s, written and stored in %.1f s",
            bundle.pk, progress.bytes_done - progress.bytes_reused, progress.bytes_reused, fetched - started,
            time.monotonic() - fetched,
        )  # fmt: skip
    except _Failure as failure:
        _save_progress(bundle.pk, progress)
        return _failed(bundle, failure, final=final)
    blobs = len({d for plan in plans for d in (*plan.manifests, *plan.blobs)})
    AirgapBundle.objects.filter(pk=bundle.pk).update(
        status=BundleStatus.READY, size=size, sha256=sha256, blob_count=blobs, storage_key=key,
        finished_at=timezone.now(), bytes_done=progress.bytes_done, bytes_reused=progress.bytes_reused,
    )  # fmt: skip
    shutil.rmtree(stage.root, ignore_errors=True)
    _audit(release, BundleStatus.READY, images=len(images), blobs=blobs, size=size, reused=progress.bytes_reused)
    bundle.refresh_from_db()
    return bundle


def _failed(bundle: AirgapBundle, failure: _Failure, *, final: bool) -> AirgapBundle:
    if failure.transient and not final:
        AirgapBundle.objects.filter(pk=bundle.pk).update(status=BundleStatus.QUEUED, error=failure.message)
        raise TryAgain(failure.message, failure.retry_after)
    AirgapBundle.objects.filter(pk=bundle.pk).update(
        status=BundleStatus.FAILED, error=failure.message, finished_at=timezone.now()
    )
    _audit(bundle.release, BundleStatus.FAILED, error=failure.message)
    bundle.refresh_from_db()
    return bundle


def _audit(release: Release, status: str, **detail: Any) -> None:
    audit(
        actor=Actor.for_system(release.app.team, ACTOR), action="airgap.build_finish",
        target=f"{release.app.slug}#{release.sequence}", status=status, **detail,
    )  # fmt: skip


def _save_progress(bundle_id: int, progress: fetch.Progress, **more: int) -> None:
    AirgapBundle.objects.filter(pk=bundle_id).update(
        bytes_done=progress.bytes_done, bytes_reused=progress.bytes_reused, **more
    )


# --- fetching ---------------------------------------------------------------------------------------


def _fetch_all(
    bundle: AirgapBundle, release: Release, images: list[ReleaseImage], stage: fetch.Stage, progress: fetch.Progress
) -> list[fetch.ImagePlan]:
    """Every image's manifests first (then the total is known), then the blobs still missing."""
    if release.status != ReleaseStatus.READY:
        raise _Failure(f"Release {release.sequence} is {release.status}; only a ready release has a bundle.")
    targets = []
    for image, target in zip(images, image_access.targets(release.app.team, images), strict=True):
        if target.problem is not None:
            problem = target.problem
            raise _Failure(problem.message, problem.transient, problem.retry_after)
        if not image.resolved_digest:
            raise _Failure(f"{target.label} has no resolved digest; resolve the release again.")
        targets.append(replace(target, reference=image.resolved_digest))
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"airgap-{bundle.pk}") as pool:
        runner = _Runner(bundle.pk, pool, progress)
        plans = []
        for i, (image, target) in enumerate(zip(images, targets, strict=True)):
            plan, targets[i] = runner.run(
                target,
                lambda t, image=image: fetch.plan_image(
                    t, stage, progress, digest=image.resolved_digest, media_type=image.media_type,
                    chosen=list(bundle.platforms), known_platforms=list(image.platforms),
                ),
            )  # fmt: skip
            plans.append(plan)
        sizes: dict[str, int] = {}
        for plan in plans:
            sizes.update(plan.manifests)
            sizes.update((d, max(b.size, 0)) for d, b in plan.blobs.items())
        _save_progress(bundle.pk, progress, bytes_total=sum(sizes.values()), blob_count=len(sizes))
        for i, (plan, target) in enumerate(zip(plans, targets, strict=True)):
            missing = [d for d in plan.blobs.values() if progress.count(d.digest, d.size, staged=stage.has(d.digest))]
            runner.run(target, lambda t, missing=missing: fetch.fetch_blobs(t, stage, progress, missing))
            _save_progress(bundle.pk, progress, images_done=i + 1)
    return plans


class _Runner:
    """Runs one fetch step on the fetch thread's own event loop, writing progress meanwhile; a
    minted token the registry refused is minted again once (as resolving does)."""

    def __init__(self, bundle_id: int, pool: ThreadPoolExecutor, progress: fetch.Progress) -> None:
        self.bundle_id, self.pool, self.progress = bundle_id, pool, progress
        self.retried: set[int] = set()

    def run(self, target: Target, step: Callable[[Target], Coroutine[Any, Any, Any]]) -> tuple[Any, Target]:
        while True:
            future = self.pool.submit(asyncio.run, step(target))
            try:
                while True:
                    try:
                        return future.result(timeout=PROGRESS_SECONDS), target
                    except FutureTimeout:
                        _save_progress(self.bundle_id, self.progress)
            except RegistryError as error:
                fresh = image_access.with_fresh_token(target, error, self.retried)
                if fresh is None:
                    raise _Failure(words(target, error), error.category in TRANSIENT, error.retry_after) from None
                target = fresh
            except fetch.PlanError as e:
                raise _Failure(str(e)) from None
            except OSError as e:
                raise _Failure(
                    f"{target.label}: the bundle's work folder could not be written ({e.strerror})."
                ) from None
            except Exception:
                logger.exception("air-gap bundle %s: fetching %r failed unexpectedly", self.bundle_id, target)
                raise _Failure(f"{target.label}: {target.where} sent an answer that could not be read.") from None


def words(target: Target, error: RegistryError) -> str:
    """A fetch failure as the bundle's error says it: the image as listed, then what happened,
    in resolving's words, then what to do."""
    if error.category == ErrorCategory.INVALID_RESPONSE and "does not match its digest" in error.message:
        return (
            f"{target.label}: digest mismatch: {target.where} sent content that does not match its digest "
            f"({error.message}); build the bundle again, and if it repeats check that registry's storage."
        )
    return image_access.explain(target, error, then="build the bundle again")


# --- the tar --------------------------------------------------------------------------------------


def _write_and_store(
    release: Release, images: list[ReleaseImage], plans: list[fetch.ImagePlan], stage: fetch.Stage
) -> tuple[str, str, int]:
    """Write the tar in the work folder, then store it; (storage key, sha256, size)."""
    tar = stage.root / "bundle.tar.partial"
    files = dict(release.files.values_list("path", "content"))
    _, names = installkit.split_manifests(files)
    try:
        with open(tar, "wb") as out:
            writer = BundleWriter(out, mtime=int(release.created_at.timestamp()))
            writer.add_json(fmt.OCI_LAYOUT, {"imageLayoutVersion": fmt.LAYOUT_VERSION})
            entries, listed = [], []
            for image, plan in zip(images, plans, strict=True):
                for digest in (*plan.manifests, *plan.blobs):
                    if not writer.has(fmt.blob_path(digest)):
                        # Staged only once its digest checked out: the hash is its name.
                        writer.add_file(fmt.blob_path(digest), stage.path(digest), sha256=digest.split(":", 1)[1])
                entries.append(
                    {
                        "mediaType": plan.media_type,
                        "digest": plan.digest,
                        "size": plan.size,
                        "annotations": {fmt.REF_NAME: image.reference},
                    }
                )
                listed.append(_entry(image, plan, names))
            writer.add_json(fmt.INDEX, {"schemaVersion": 2, "mediaType": fmt.OCI_INDEX, "manifests": entries})
            document = fmt.images_document(
                app=release.app.slug, sequence=release.sequence, version=release.version, images=listed
            )
            writer.add_json(fmt.IMAGES, document)
            for path, content in sorted(files.items()):
                writer.add_bytes(fmt.INSTALL + path, content.encode())
            sha256, size = writer.finish(signing_key())
        key = bundle_key(release.app.team_id, release.pk)
        bundle_store().put_file(key, tar, move=True)
    except OSError as e:
        raise _Failure(f"The bundle could not be written in the work folder ({e.strerror}).") from None
    except StorageError as e:
        raise _Failure(f"The bundle could not be stored: {e}.", transient=True) from None
    finally:
        tar.unlink(missing_ok=True)
    return key, sha256, size


def _entry(image: ReleaseImage, plan: fetch.ImagePlan, names: set[str]) -> dict[str, Any]:
    """The image's images.json entry; `spellings` are the names the manifests use for it, by the
    install kit's rules (Docker's normalisation)."""
    spellings = sorted(n for n in names if installkit.location(n) == (image.host, image.repository))
    return fmt.image_entry(
        reference=image.reference, source=image.source, name=image.name, tag=image.tag, digest=plan.digest,
        resolved_digest=image.resolved_digest, media_type=plan.media_type, repository=image.repository,
        spellings=spellings, platforms=plan.platforms, size=plan.total,
    )  # fmt: skip
