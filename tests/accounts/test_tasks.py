from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import services
from accounts.models import Invite, Role
from accounts.tasks import invites_purge_expired_task
from portal.queue import enqueue
from tests.celery_worker import wait_for


def _invites(actor):
    old, _ = services.invite_create(actor=actor, role=Role.DEVELOPER)
    fresh, _ = services.invite_create(actor=actor, role=Role.DEVELOPER)
    long_ago = timezone.now() - timedelta(days=30)
    Invite.objects.filter(pk=old.pk).update(created_at=long_ago, expires_at=long_ago + timedelta(days=7))
    return old, fresh


@pytest.mark.django_db
def test_purge_task_deletes_only_long_expired_invites(actor):
    old, fresh = _invites(actor)
    assert invites_purge_expired_task() == "purged 1"
    assert list(Invite.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.slow
def test_a_real_worker_over_redis_runs_the_enqueued_task(celery_worker_process, actor):
    old, fresh = _invites(actor)
    enqueue(invites_purge_expired_task)
    log = celery_worker_process.log
    assert wait_for(lambda: not Invite.objects.filter(pk=old.pk).exists()), log.read_text()
    assert Invite.objects.filter(pk=fresh.pk).exists()
    assert "succeeded" in log.read_text()
