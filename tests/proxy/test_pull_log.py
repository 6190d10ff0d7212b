"""The pull log is written in batches off the request path (delivery/proxy/pull_log.py)."""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from delivery.proxy import pull_log
from licenses import services as licenses
from licenses.models import License, PullEvent
from tests.celery_worker import wait_for


def _event(app, *, status: int = 200, at=None, reference: str = "1.0", size: int = 10) -> PullEvent:
    return PullEvent(
        app=app, repository="proxy/a/h/acme/api", kind="manifest", reference=reference,
        status=status, bytes=size, reason="" if status == 200 else "upstream 404", created_at=at or timezone.now(),
    )  # fmt: skip


@pytest.fixture
def two_licenses(actor, app):
    first, _ = licenses.license_create(actor=actor, app=app, customer_name="Globex")
    second, _ = licenses.license_create(actor=actor, app=app, customer_name="Initech")
    return first, second


def test_a_batch_is_one_look_up_one_insert_and_one_update_per_license(app, two_licenses):
    first, second = two_licenses
    now = timezone.now()
    batch = [pull_log.Entry(str(first.uid), _event(app, at=now - timedelta(seconds=n))) for n in range(20)]
    batch += [pull_log.Entry(str(second.uid), _event(app, status=404, at=now))]
    with CaptureQueriesContext(connection) as captured:
        pull_log.write(batch)
    # look-up, bulk INSERT, one UPDATE (second had no success); the test's transaction turns the
    # writer's own transaction into a savepoint, which is no work of the writer's.
    work = [q["sql"] for q in captured.captured_queries if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert len(work) == 3, work
    assert PullEvent.objects.filter(license=first).count() == 20
    assert PullEvent.objects.get(license=second).status == 404
    first.refresh_from_db()
    second.refresh_from_db()
    assert first.last_pull_at == now
    assert second.last_pull_at is None  # a failed request is not a pull


def test_a_late_batch_never_moves_the_last_pull_back(app, two_licenses):
    license = two_licenses[0]
    now = timezone.now()
    pull_log.write([pull_log.Entry(str(license.uid), _event(app, at=now))])
    pull_log.write([pull_log.Entry(str(license.uid), _event(app, at=now - timedelta(minutes=5)))])
    license.refresh_from_db()
    assert license.last_pull_at == now
    assert PullEvent.objects.filter(license=license).count() == 2


def test_rows_of_a_license_deleted_meanwhile_are_dropped_and_the_rest_kept(app, two_licenses):
    gone, kept = two_licenses
    gone_uid = str(gone.uid)
    License.objects.filter(pk=gone.pk).delete()
    pull_log.write([pull_log.Entry(gone_uid, _event(app)), pull_log.Entry(str(kept.uid), _event(app))])
    assert list(PullEvent.objects.values_list("license_id", flat=True)) == [kept.pk]


@pytest.mark.django_db(transaction=True)
def test_a_batch_the_database_refuses_is_logged_and_never_raised(app, two_licenses, caplog):
    license = two_licenses[0]
    broken = _event(app, size=2**70)  # beyond bigint: PostgreSQL refuses the INSERT
    with caplog.at_level(logging.ERROR, logger="delivery.proxy.pull_log"):
        pull_log.write([pull_log.Entry(str(license.uid), broken)])
    assert "could not record 1 pull events" in caplog.text
    assert not PullEvent.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_writer_thread_saves_recorded_rows_within_a_second_or_two(app, two_licenses):
    license = two_licenses[0]
    for n in range(5):
        pull_log.record(str(license.uid), _event(app, reference=f"tag-{n}"))
    assert wait_for(lambda: PullEvent.objects.filter(license=license).count() == 5, timeout=5)
    assert pull_log._writer is not None and pull_log._writer.is_alive()


@pytest.mark.django_db(transaction=True)
def test_flush_writes_what_is_still_queued(app, two_licenses, monkeypatch):
    license = two_licenses[0]
    # As at exit: no writer thread takes from this queue.
    monkeypatch.setattr(pull_log, "_queue", pull_log.queue.SimpleQueue())
    monkeypatch.setattr(pull_log, "_ensure_writer", lambda: None)
    pull_log.record(str(license.uid), _event(app))
    assert not PullEvent.objects.exists()
    pull_log.flush()
    assert PullEvent.objects.filter(license=license).count() == 1


@pytest.mark.django_db(transaction=True)
def test_rows_the_writer_is_waiting_on_are_still_there_for_the_flush_at_exit(app, two_licenses, monkeypatch):
    license = two_licenses[0]
    monkeypatch.setattr(pull_log, "FLUSH_SECONDS", 2.0)
    for n in range(3):
        pull_log.record(str(license.uid), _event(app, reference=f"tag-{n}"))
    time.sleep(0.3)  # the writer has woken and is gathering the batch
    pull_log.flush()  # what atexit calls
    assert PullEvent.objects.filter(license=license).count() == 3


@pytest.mark.django_db(transaction=True)
def test_flush_waits_for_the_batch_the_writer_is_saving(app, two_licenses, monkeypatch):
    license = two_licenses[0]
    real_write = pull_log.write
    taken = threading.Event()

    def slow_write(batch):
        taken.set()  # the batch is out of the queue now
        time.sleep(0.5)
        real_write(batch)

    monkeypatch.setattr(pull_log, "FLUSH_SECONDS", 0.0)
    monkeypatch.setattr(pull_log, "write", slow_write)
    for n in range(3):
        pull_log.record(str(license.uid), _event(app, reference=f"tag-{n}"))
    assert taken.wait(timeout=5)
    pull_log.flush()  # what atexit calls: the writer's batch must be saved before it returns
    assert PullEvent.objects.filter(license=license).count() == 3
