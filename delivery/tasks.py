"""Delivery work for the Celery worker: thin, ids in, a short string out."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)

BUILD_RETRIES = 3  # delivery.airgap.build.RETRIES (kept here: the decorator reads it at import)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=BUILD_RETRIES)
def airgap_build_task(self, bundle_id: int) -> str:
    """Build one bundle. acks_late: a worker killed mid-build leaves the message to be taken
    again, and the next attempt reuses the blobs already staged. While the failure may pass
    (unreachable, 5xx, rate limited) the bundle stays queued and the task tries again after
    30 s, 60 s, 120 s (longer if the upstream asked to wait); the last try settles it."""
    from delivery.airgap.build import TryAgain, bundle_build
    from delivery.models import AirgapBundle

    final = self.request.retries >= BUILD_RETRIES
    try:
        bundle = bundle_build(bundle_id, final=final)
    except AirgapBundle.DoesNotExist:  # the release was deleted meanwhile
        return "gone"
    except TryAgain as e:
        logger.info("air-gap bundle %s: trying again (%s)", bundle_id, e)
        raise self.retry(countdown=max(30 * 2**self.request.retries, min(e.retry_after or 0, 600))) from None
    logger.info("air-gap bundle %s: %s", bundle_id, bundle.status if bundle else "skipped")
    return bundle.status if bundle else "skipped"


@shared_task
def proxy_cache_sweep_task() -> str:
    """Remove cached bytes no row records (delivery.proxy.cache.sweep_orphans)."""
    from delivery.proxy import cache

    return f"{cache.sweep_orphans()} removed"
