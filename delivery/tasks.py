"""Delivery work for the Celery worker: thin, ids in, a short string out."""

from __future__ import annotations

import logging

from celery import shared_task

logger = logging.getLogger(__name__)


@shared_task(acks_late=True, reject_on_worker_lost=True)
def airgap_build_task(bundle_id: int) -> str:
    """Build one bundle. acks_late: a worker killed mid-build leaves the message to be taken
    again, and the next attempt reuses the blobs already staged."""
    from delivery.airgap.build import bundle_build

    bundle = bundle_build(bundle_id)
    logger.info("air-gap bundle %s: %s", bundle_id, bundle.status if bundle else "skipped")
    return bundle.status if bundle else "skipped"
