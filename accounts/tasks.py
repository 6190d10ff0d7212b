from __future__ import annotations

import logging

from celery import shared_task

from accounts import services

logger = logging.getLogger(__name__)


@shared_task
def invites_purge_expired_task() -> str:
    deleted = services.invites_purge_expired()
    logger.info("purged %d expired invites", deleted)
    return f"purged {deleted}"
