from __future__ import annotations

import logging

from celery import shared_task

from accounts import domain_services, services

logger = logging.getLogger(__name__)


@shared_task
def invites_purge_expired_task() -> str:
    deleted = services.invites_purge_expired()
    logger.info("purged %d expired invites", deleted)
    return f"purged {deleted}"


@shared_task
def domains_recheck_task() -> str:
    """Daily: every verified custom domain's TXT record looked up again; a vanished one is lost."""
    result = domain_services.domains_recheck()
    logger.info(
        "custom domains re-checked: %d, lost: %s, lookups failed: %s",
        result.checked,
        ", ".join(result.lost) or "none",
        ", ".join(result.failed) or "none",
    )
    return f"{result.checked} checked, {len(result.lost)} lost, {len(result.failed)} failed"
