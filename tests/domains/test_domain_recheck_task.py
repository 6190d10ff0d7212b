"""The daily re-check: scheduled by beat, run by a real Celery worker over Redis against a real
dnsmasq (the worker's lookups go through PORTAL_DNS_NAMESERVERS from its environment)."""

from __future__ import annotations

import pytest
from django.conf import settings

from accounts import domain_services as services
from accounts.models import AuditEvent, CustomDomain, DomainStatus
from accounts.tasks import domains_recheck_task
from portal.queue import enqueue
from tests.celery_worker import celery_worker, wait_for
from tests.realparts.env import child_env


def test_beat_runs_the_re_check_daily():
    from portal.celery import app

    entry = settings.CELERY_BEAT_SCHEDULE["recheck-custom-domains"]
    assert entry == {"task": "accounts.tasks.domains_recheck_task", "schedule": 24 * 3600}
    app.loader.import_default_modules()
    assert entry["task"] in app.tasks


@pytest.mark.django_db
def test_the_task_reports_what_it_did(actor, dns_server):
    row = services.domain_add(actor=actor, domain="proxy.vendor.test", kind="proxy")
    dns_server.serve({row.challenge_name: row.challenge})
    services.domain_verify(actor=actor, domain=row)
    assert domains_recheck_task() == "1 checked, 0 lost, 0 failed"
    dns_server.stop()
    assert domains_recheck_task() == "1 checked, 0 lost, 1 failed"
    dns_server.serve({})
    assert domains_recheck_task() == "1 checked, 1 lost, 0 failed"
    assert domains_recheck_task() == "0 checked, 0 lost, 0 failed"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_loses_a_domain_whose_record_vanished(actor, dns_server, tmp_path, private_queue):
    kept = services.domain_add(actor=actor, domain="kept.vendor.test", kind="proxy")
    gone = services.domain_add(actor=actor, domain="gone.vendor.test", kind="registry")
    dns_server.serve({kept.challenge_name: kept.challenge, gone.challenge_name: gone.challenge})
    for row in (kept, gone):
        services.domain_verify(actor=actor, domain=row)
    dns_server.serve({kept.challenge_name: kept.challenge})

    env = child_env(PORTAL_DNS_NAMESERVERS=dns_server.address)
    with celery_worker(tmp_path / "worker.log", queue=private_queue, env=env) as worker:
        enqueue(domains_recheck_task)
        lost = lambda: CustomDomain.objects.get(pk=gone.pk).status == DomainStatus.LOST  # noqa: E731
        assert wait_for(lost), worker.log.read_text()
    assert CustomDomain.objects.get(pk=kept.pk).status == DomainStatus.VERIFIED
    assert AuditEvent.objects.filter(
        action="domain.lost", target="gone.vendor.test", actor="daily domain check"
    ).exists()
    assert "2 checked, 1 lost, 0 failed" in worker.log.read_text()
