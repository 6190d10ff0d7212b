"""Asking for a release's air-gap bundle, and finding one: the service every door calls (page,
API, CLI through the API, a promotion to an air-gap channel, a release that finished resolving).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone

from accounts.access import Actor, Perm
from accounts.services import audit
from delivery.models import AirgapBundle, BundleStatus
from licenses.models import Promotion, Release, ReleaseStatus

logger = logging.getLogger(__name__)

# Who asks when nobody clicked: a promotion to, or a release resolved on, an air-gap channel.
CHANNEL_ACTOR = "air-gap channel"
# A build not heard of for this long (its worker died) may be asked for again.
STALE_AFTER = timedelta(minutes=30)


def bundle_of(release: Release) -> AirgapBundle | None:
    return AirgapBundle.objects.filter(release=release).first()


def bundle_request(*, actor: Actor, release: Release) -> AirgapBundle:
    """Queue building the release's bundle (again). A build already queued or under way is
    returned as it is; a finished or failed one is built again, reusing the blobs fetched."""
    if release.app.team_id != actor.team.pk:
        raise PermissionDenied("That belongs to another team.")
    if not actor.system and not actor.can(Perm.WRITE):
        raise PermissionDenied("Your role in this team does not allow building bundles.")
    if release.status != ReleaseStatus.READY:
        reason = (
            "is still resolving its images; the bundle can be built once it is ready"
            if release.status == ReleaseStatus.RESOLVING
            else "failed to resolve its images; upload a release whose images resolve"
        )
        raise ValidationError({"release": [f"Release {release.sequence} {reason}."]})
    now = timezone.now()
    with transaction.atomic():
        bundle, created = AirgapBundle.objects.select_for_update().get_or_create(
            release=release, defaults={"requested_by": actor.label, "platforms": release.app.airgap_platforms}
        )
        busy = bundle.status in (BundleStatus.QUEUED, BundleStatus.BUILDING)
        if busy and not created and (bundle.started_at or bundle.requested_at) > now - STALE_AFTER:
            return bundle
        if not created:
            AirgapBundle.objects.filter(pk=bundle.pk).update(
                status=BundleStatus.QUEUED, platforms=release.app.airgap_platforms, requested_by=actor.label,
                requested_at=now, started_at=None, finished_at=None, error="",
                images_done=0, bytes_done=0, bytes_reused=0,
            )  # fmt: skip
            bundle.refresh_from_db()
        audit(actor=actor, action="airgap.build", target=f"{release.app.slug}#{release.sequence}")
        transaction.on_commit(lambda: _enqueue(bundle.pk))
    return bundle


def _enqueue(bundle_id: int) -> None:
    from delivery.tasks import airgap_build_task
    from portal.queue import QueueUnavailable, enqueue

    try:
        enqueue(airgap_build_task, bundle_id)
    except QueueUnavailable:
        AirgapBundle.objects.filter(pk=bundle_id, status=BundleStatus.QUEUED).update(
            status=BundleStatus.FAILED,
            finished_at=timezone.now(),
            error="The task queue was unavailable; build the bundle again in a moment.",
        )


def _airgap_channels_of(release: Release) -> bool:
    return Promotion.objects.filter(release=release, channel__airgap=True).exists()


def on_release_promoted(sender, promotion: Promotion, **kwargs) -> None:
    """A release promoted to an air-gap channel gets its bundle (once it is ready)."""
    release = promotion.release
    if promotion.channel.airgap and release.status == ReleaseStatus.READY and bundle_of(release) is None:
        bundle_request(actor=Actor.for_system(release.app.team, CHANNEL_ACTOR), release=release)


def on_release_resolved(sender, release: Release, **kwargs) -> None:
    """A release promoted to an air-gap channel while it was resolving gets its bundle now."""
    if release.status == ReleaseStatus.READY and bundle_of(release) is None and _airgap_channels_of(release):
        bundle_request(actor=Actor.for_system(release.app.team, CHANNEL_ACTOR), release=release)
