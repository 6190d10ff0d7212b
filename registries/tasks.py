"""Registry work for the Celery worker and beat: thin, ids in, a short string out."""

from __future__ import annotations

import logging

from celery import shared_task
from django.core.exceptions import ObjectDoesNotExist, ValidationError

from accounts.access import Actor
from portal.outbound.errors import RegistryError
from registries import release_resolve, services
from registries.models import ExternalRegistry

logger = logging.getLogger(__name__)

REFRESH_RETRIES = 4
RETEST_ACTOR = "daily check"  # who the daily re-tests are requested by, in the test history


@shared_task
def registry_test_task(test_id: int) -> str:
    test = services.registry_test_run(test_id)
    logger.info("registry test %s of registry %s: %s %s", test.pk, test.registry_id, test.status, test.category)
    return test.status


@shared_task(bind=True, max_retries=REFRESH_RETRIES)
def registry_refresh_token_task(self, registry_id: int) -> str:
    try:
        services.registry_refresh_token(registry_id)
    except RegistryError as e:
        if self.request.retries >= REFRESH_RETRIES:
            services.registry_mark_refresh_failed(registry_id, e.message)
            logger.warning(
                "registry %s: minting a new upstream login failed for good: %s", registry_id, e.category.value
            )
            return f"failed: {e.category.value}"
        # Exponential backoff with jitter: 10 s, 20 s, 40 s, 80 s (± up to 5 s).
        raise self.retry(exc=e, countdown=10 * 2**self.request.retries + (registry_id % 5))
    return "refreshed"


@shared_task
def registries_refresh_tokens_task() -> str:
    due = services.registries_due_for_refresh()
    for registry_id in due:
        registry_refresh_token_task.delay(registry_id)
    return f"{len(due)} due"


@shared_task
def registries_retest_task() -> str:
    """Daily: test every registry again with its last good image, as a request from the
    "daily check" actor through registry_test_request: the image check and the fail-fast enqueue
    are the same as for a person's test; the per-team limit is for people and tokens, so every
    registry is checked and the team's budget stays theirs. A refused image is skipped and logged."""
    due = dict(services.registries_to_retest())
    registries = ExternalRegistry.objects.select_related("team").in_bulk(list(due))
    queued = skipped = 0
    for registry_id, image in due.items():
        registry = registries.get(registry_id)
        if registry is None:  # deleted meanwhile
            continue
        try:
            services.registry_test_request(
                actor=Actor.for_system(registry.team, RETEST_ACTOR), registry=registry, image=image
            )
        except (services.TooManyTests, ValidationError) as e:
            logger.warning(
                "daily check of registry %s skipped: %s", registry_id, " ".join(getattr(e, "messages", [str(e)]))
            )
            skipped += 1
            continue
        queued += 1
    return f"{queued} queued, {skipped} skipped" if skipped else f"{queued} queued"


@shared_task(bind=True, max_retries=release_resolve.RETRIES)
def release_resolve_task(self, release_id: int) -> str:
    """Resolve a release's images. While every failure may pass (unreachable, 5xx, rate
    limited), the release stays `resolving` and the task tries again after 30 s, 60 s, 120 s
    (longer if the upstream asked to wait); the last try settles it `ready` or `failed`."""
    final = self.request.retries >= release_resolve.RETRIES
    try:
        result = release_resolve.release_resolve(release_id, final=final)
    except ObjectDoesNotExist:  # the release (or one of its images) was deleted meanwhile
        return "gone"
    if result is None:
        return "already resolving"
    logger.info(
        "release %s resolved: %s (%s images, %s errors)", release_id, result.status, result.images, result.errors
    )
    if result.retry_after is not None:
        countdown = max(30 * 2**self.request.retries, min(result.retry_after, 600))
        raise self.retry(countdown=countdown)
    return result.status


@shared_task
def releases_resolve_stuck_task() -> str:
    """Beat: queue again the releases still `resolving` long after their upload (the queue was
    down when they were created, or a worker died with them)."""
    stuck = release_resolve.releases_stuck()
    queued = sum(release_resolve.release_resolve_request(release_id) for release_id in stuck)
    return f"{queued} of {len(stuck)} queued"
