"""Registry work for the Celery worker and beat: thin, ids in, a short string out."""

from __future__ import annotations

import logging

from celery import shared_task

from portal.outbound.errors import RegistryError
from registries import services
from registries.models import RegistryTest

logger = logging.getLogger(__name__)

REFRESH_RETRIES = 4


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
    """Daily: test every registry again with its last good image."""
    count = 0
    for registry_id, image in services.registries_to_retest():
        test = RegistryTest.objects.create(registry_id=registry_id, image=image, requested_by="daily check")
        registry_test_task.delay(test.pk)
        count += 1
    return f"{count} queued"
