"""Resolving a release's images: each entry of its `images:` list is looked up where it lives
(tag → digest, manifest type, platforms, compressed size) and judged public or private, once,
when the release is created. What fails becomes an error finding on the image; the release
ends `ready` (no errors) or `failed`.

The database is read and written on the calling thread only; the registry calls run on a few
threads of their own (one event loop and one guarded client per image), each under a deadline.
Where and with which login each image is asked for comes from image_access.py, shared with the
air-gap build.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from accounts.access import Actor
from accounts.services import audit
from licenses import signals
from licenses.models import (
    FindingLevel,
    Release,
    ReleaseFinding,
    ReleaseImage,
    ReleaseStatus,
    Visibility,
)
from licenses.release_spec import read_settings
from portal.outbound.errors import ErrorCategory, RegistryError
from registries import image_access
from registries.clients import oci
from registries.clients.distribution import AsyncPrivateRegistry, PrivateRegistry
from registries.image_access import (
    CREDENTIALS_REJECTED,
    DIGEST_MISMATCH,
    IMAGE_NOT_FOUND,
    INVALID_MANIFEST,
    UPSTREAM_UNREACHABLE,
    Problem,
    Target,
    explain,
    problem_of,
    with_fresh_token,
)

logger = logging.getLogger(__name__)

# The findings resolving writes (all errors, each about one image). A new run deletes these
# and only these: the lint's findings, written at upload, stay.
RESOLVE_RULES = (IMAGE_NOT_FOUND, CREDENTIALS_REJECTED, UPSTREAM_UNREACHABLE, DIGEST_MISMATCH, INVALID_MANIFEST)

# Images looked up at once, and how long one may take (anonymous try, login, manifests and
# config together). 200 images against a slow upstream: at most 200 / 4 × 30 s = 25 min.
CONCURRENCY = 4
IMAGE_TIMEOUT = 30.0
# The task's retries when every failure may pass (unreachable, timed out, 5xx, rate limited).
RETRIES = 3
# A release still `resolving` this long after its upload is enqueued again by the beat sweep
# (the queue was down, or a worker died); after GIVE_UP_AFTER it is marked failed instead.
STUCK_AFTER = timedelta(minutes=10)
GIVE_UP_AFTER = timedelta(days=1)
# One run per release at a time: a sweep's duplicate finds the lock taken and returns.
LOCK_SECONDS = 30 * 60
ACTOR = "release resolver"


@dataclass(frozen=True)
class Outcome:
    target: Target
    facts: oci.ImageFacts | None = None
    error: RegistryError | None = None


@dataclass(frozen=True)
class ResolveResult:
    status: str
    images: int
    errors: int
    retry_after: int | None = None  # set when the release stays `resolving` for another try


# --- enqueueing ----------------------------------------------------------------------------


def release_resolve_request(release_id: int) -> bool:
    """Queue resolving a release; False when the queue is down (the release stays `resolving`
    and the beat sweep queues it again)."""
    from portal.queue import QueueUnavailable, enqueue
    from registries.tasks import release_resolve_task

    try:
        enqueue(release_resolve_task, release_id)
    except QueueUnavailable:
        logger.warning("release %s: resolving not queued (queue unavailable); the sweep retries", release_id)
        return False
    return True


def on_release_created(sender, release: Release, **kwargs) -> None:
    """licenses.signals.release_created: resolve the new release's images (a release without
    images is ready from the start)."""
    if release.status == ReleaseStatus.RESOLVING:
        release_resolve_request(release.pk)


def releases_stuck() -> list[int]:
    """Releases still `resolving` STUCK_AFTER their upload; those past GIVE_UP_AFTER are marked
    failed here instead of being returned."""
    now = timezone.now()
    stuck = Release.objects.filter(status=ReleaseStatus.RESOLVING, created_at__lt=now - STUCK_AFTER)
    for release in stuck.filter(created_at__lt=now - GIVE_UP_AFTER).select_related("app__team"):
        with transaction.atomic():
            updated = Release.objects.filter(pk=release.pk, status=ReleaseStatus.RESOLVING).update(
                status=ReleaseStatus.FAILED, resolved_at=now
            )
            if updated:
                ReleaseFinding.objects.create(
                    release=release, level=FindingLevel.ERROR, rule=UPSTREAM_UNREACHABLE,
                    message="Resolving the images did not finish within a day; upload the release again.",
                )  # fmt: skip
                _audit(release, ReleaseStatus.FAILED, images=release.images.count(), errors=1)
    return list(stuck.filter(created_at__gte=now - GIVE_UP_AFTER).values_list("pk", flat=True))


# --- resolving -----------------------------------------------------------------------------


def release_resolve(release_id: int, *, final: bool = True) -> ResolveResult | None:
    """Resolve every image of the release and set its status; None when another run holds it.

    Idempotent: earlier resolve findings and results are cleared first. With `final` False and
    only failures that may pass, the release stays `resolving` and `retry_after` says when to
    try again.
    """
    release = Release.objects.select_related("app__team").get(pk=release_id)
    lock = f"release-resolve:{release.pk}:{int(release.created_at.timestamp())}"
    try:
        if not cache.add(lock, 1, timeout=LOCK_SECONDS):
            logger.info("release %s is being resolved by another run", release.pk)
            return None
    except Exception:
        logger.warning("cache unavailable; resolving release %s without the run lock", release.pk)
        lock = ""
    try:
        return _resolve(release, final=final)
    finally:
        if lock:
            try:
                cache.delete(lock)
            except Exception:
                logger.warning("cache unavailable; the lock of release %s expires by itself", release.pk)


def _resolve(release: Release, *, final: bool) -> ResolveResult:
    images = list(release.images.order_by("position"))
    with transaction.atomic():
        ReleaseFinding.objects.filter(release=release, rule__in=RESOLVE_RULES).delete()
        release.images.update(resolved_digest="", media_type="", platforms=[], size=None, visibility="")
    where = _where_listed(release, images)
    targets = image_access.targets(release.app.team, images)
    problems: list[Problem] = []
    retried: set[int] = set()  # registries whose minted token was refreshed in this run
    with ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix=f"resolve-{release.pk}") as pool:
        pending: set[Future[Outcome]] = set()
        for target in targets:
            if target.problem is not None:
                _record(release, target, None, target.problem, where)
                problems.append(target.problem)
            else:
                pending.add(pool.submit(_look_up, target))
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                outcome = future.result()
                again = with_fresh_token(outcome.target, outcome.error, retried)
                if again is not None:
                    pending.add(pool.submit(_look_up, again))
                    continue
                problem = _problem(outcome)
                problem = _record(release, outcome.target, outcome.facts, problem, where)
                if problem is not None:
                    problems.append(problem)
    retry = not final and bool(problems) and all(p.transient for p in problems)
    if not problems:
        status = ReleaseStatus.READY
    elif retry:
        status = ReleaseStatus.RESOLVING
    else:
        status = ReleaseStatus.FAILED
    finished = None if status == ReleaseStatus.RESOLVING else timezone.now()
    Release.objects.filter(pk=release.pk).update(status=status, resolved_at=finished)
    _audit(release, status, images=len(images), errors=len(problems))
    if status != ReleaseStatus.RESOLVING:
        release.refresh_from_db()
        signals.release_resolved.send(sender=Release, release=release)
    retry_after = max((p.retry_after or 0 for p in problems), default=0) if retry else None
    return ResolveResult(status, len(images), len(problems), retry_after)


def _audit(release: Release, status: str, *, images: int, errors: int) -> None:
    actor = Actor.for_system(release.app.team, ACTOR)
    audit(
        actor=actor, action="release.resolve", target=f"{release.app.slug}#{release.sequence}",
        status=status, images=images, errors=errors,
    )  # fmt: skip


def _where_listed(release: Release, images: list[ReleaseImage]) -> dict[int, tuple[str, int | None]]:
    """Image id → (file, line) of its entry in the settings, for the findings."""
    files = dict(release.files.values_list("path", "content"))
    specs, _ = read_settings(files, {image.source for image in images})
    if len(specs.images) != len(images):
        return {}
    return {image.pk: (spec.file, spec.line) for image, spec in zip(images, specs.images, strict=True)}


# --- on the worker threads (no database here) -----------------------------------------------


def _look_up(target: Target) -> Outcome:
    """One image, on a loop of its own. A hostile upstream ends as an error, never a crash."""
    try:
        if target.endpoint is None:
            facts = asyncio.run(_private_facts(target))
        else:
            facts = asyncio.run(
                oci.fetch_image_facts(
                    target.endpoint,
                    target.repository,
                    target.reference,
                    username=target.username or None,
                    password=target.password or None,
                    allowed_realm_hosts=target.realm_hosts,
                    total_timeout=IMAGE_TIMEOUT,
                )
            )
        return Outcome(target, facts=facts)
    except RegistryError as e:
        return Outcome(target, error=e)
    except Exception:
        logger.exception("resolving %r failed unexpectedly", target)
        return Outcome(target, error=RegistryError("the answer could not be read", ErrorCategory.INVALID_RESPONSE))


async def _private_facts(target: Target) -> oci.ImageFacts:
    # The private registry's client blocks; its own timeouts (3 s to connect, 10 s to read)
    # bound each of the few calls one image takes.
    with PrivateRegistry(target.private_url) as registry:
        facts = await oci.describe_image(AsyncPrivateRegistry(registry), target.repository, target.reference)
    # Nobody pulls from the portal's registry without a license or a login: always private.
    return replace(facts, public=False)


# --- findings ---------------------------------------------------------------------------------


def _problem(outcome: Outcome) -> Problem | None:
    error = outcome.error
    if error is None:
        return None
    return problem_of(error, explain(outcome.target, error))


def _record(
    release: Release,
    target: Target,
    facts: oci.ImageFacts | None,
    problem: Problem | None,
    where: dict[int, tuple[str, int | None]],
) -> Problem | None:
    """Store one image's result (so the page shows progress) and its finding, if any."""
    image = ReleaseImage.objects.get(pk=target.image_id)
    if facts is not None:
        ReleaseImage.objects.filter(pk=image.pk).update(
            resolved_digest=facts.digest,
            media_type=facts.media_type[:100],
            platforms=facts.platforms,
            size=facts.size,
            visibility=Visibility.PUBLIC if facts.public else Visibility.PRIVATE,
        )
        if image.digest and image.tag and facts.digest != image.digest:
            problem = Problem(
                DIGEST_MISMATCH,
                f"{target.label}: tag {image.tag} points to {facts.digest}, not the listed {image.digest}; "
                "list the digest you mean (or the tag alone) and upload the release again.",
            )
    if problem is not None:
        file, line = where.get(image.pk, ("", None))
        ReleaseFinding.objects.create(
            release=release, image=image, level=FindingLevel.ERROR, rule=problem.rule,
            file=file, line=line, message=problem.message,
        )  # fmt: skip
    return problem
