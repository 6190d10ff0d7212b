"""A real Celery worker process over Redis, on the test database."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.realparts.env import child_env

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path, monkeypatch):
    """Starts `celery worker` against the test database and the Redis broker; stops it after.
    Yields the path of its log (stdout and stderr)."""
    with celery_worker(tmp_path, monkeypatch) as log:
        yield log


@contextmanager
def celery_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *extra_args: str) -> Iterator[Path]:
    """`celery worker` (plus `extra_args`) as the Procfile runs it, its log in `tmp_path/worker.log`.

    Tasks go to a queue of this test's own: other test runs on this machine share the Redis
    database, and their workers must not take these messages (nor this worker theirs).
    """
    from portal.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("the worker tests need CELERY_BROKER_URL=redis://… (scripts/test.sh sets it)")
    queue = f"worker-tests-{uuid.uuid4().hex[:12]}"
    monkeypatch.setitem(app.conf, "task_default_queue", queue)  # the router reads it on every send
    env = child_env()
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", "solo", "--loglevel", "INFO"]
    command += ["-Q", queue, "-n", f"{queue}@%h", *extra_args]
    log = tmp_path / "worker.log"
    with open(log, "w") as out:
        worker = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "ready." not in log.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            worker.kill()
            pytest.fail(f"celery worker did not start:\n{log.read_text()}")
        time.sleep(0.2)
    try:
        yield log
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=10)
        except subprocess.TimeoutExpired:
            worker.kill()
        broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
        broker.delete(queue, f"_kombu.binding.{queue}")
        broker.close()


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
