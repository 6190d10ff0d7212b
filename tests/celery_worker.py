"""Real Celery worker processes: the one way tests start them, and the private queue they serve.

`celery_worker_process` is a worker on the test database serving a queue of the test's own;
tests that need another kind (several workers, other options, another database) call the
`celery_worker` context manager with those options.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
from django.conf import settings

from tests.realparts.env import child_env

ROOT = Path(__file__).resolve().parent.parent
_started = itertools.count(1)


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path  # its stdout and stderr


@pytest.fixture
def private_queue(monkeypatch) -> Iterator[str]:
    """Tasks this process enqueues go to a queue of this test's own on the Redis broker: other
    test runs on this machine share the broker, and their workers must not take these messages
    (nor this test's workers theirs). The queue is deleted afterwards."""
    from portal.celery import app

    if not settings.CELERY_BROKER_URL.startswith("redis://"):
        pytest.fail("the worker tests need CELERY_BROKER_URL=redis://… (scripts/test.sh sets it)")
    name = f"test-{uuid.uuid4().hex[:12]}"
    # The router reads task_default_queue on every send (celery.app.routes.Router.route).
    monkeypatch.setitem(app.conf, "task_default_queue", name)
    yield name
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(name, f"_kombu.binding.{name}", f"_kombu.binding_permanent.{name}")
    broker.close()


@pytest.fixture
def celery_worker_process(transactional_db, tmp_path, private_queue) -> Iterator[Worker]:
    """`celery worker` on the test database, serving this test's private queue; stopped after."""
    with celery_worker(tmp_path / "worker.log", queue=private_queue) as worker:
        yield worker


@contextmanager
def celery_worker(
    log: Path,
    *extra_args: str,
    queue: str,
    env: dict[str, str] | None = None,
    pool: str = "solo",
    stop_signal: int = signal.SIGTERM,
) -> Iterator[Worker]:
    """`celery worker` as the Procfile runs it, plus `extra_args`, serving `queue`; its output in `log`.

    `env` defaults to the test's own (its database, var dir and keys: tests.realparts.env).
    Waits until the worker is ready; on the way out sends `stop_signal` (SIGTERM: warm
    shutdown; SIGQUIT: cold) unless the test has already stopped it.
    """
    command = [sys.executable, "-m", "celery", "-A", "portal", "worker", "--pool", pool, "--loglevel", "INFO"]
    command += ["-Q", queue, "-n", f"{queue}-{os.getpid()}-{next(_started)}@%h", *extra_args]
    with open(log, "w") as out:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env if env is not None else child_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 30
    while "ready." not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"celery worker did not start:\n{log.read_text()}")
        time.sleep(0.1)
    try:
        yield Worker(process, log)
    finally:
        if process.poll() is None:
            process.send_signal(stop_signal)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for(condition, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False
