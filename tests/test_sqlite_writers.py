"""The embedded SQLite default (`make run`) with every local process writing it at once: two web
processes (uvicorn --workers 2, as `make run` starts them), a worker and the CLI."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.celery_worker import celery_worker
from tests.realparts.distribution import free_port
from tests.realparts.env import stop
from tests.realparts.portal_server import start_portal

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "a-Long-test-passw0rd"
SIGNUP_THREADS, SIGNUPS_PER_THREAD = 3, 6
CLI_LOOPS, CLI_RUNS_PER_LOOP = 2, 5
REGISTRY_TESTS = 20


def _local_env(var_dir: Path) -> dict[str, str]:
    """`make run`'s storage: no DATABASE_URL (var/portal.sqlite3) and the filesystem broker."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    return {**env, "PORTAL_VAR_DIR": str(var_dir)}


def _manage(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=60
    )


def _signups(base: str, thread: int, errors: list[str]) -> None:
    """A browser's sign-up: the form (for its CSRF token), then the post."""
    with httpx.Client(base_url=base, timeout=60) as browser:
        for i in range(SIGNUPS_PER_THREAD):
            page = browser.get("/signup/")
            csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
            form = {
                "email": f"web{thread}-{i}@example.test",
                "password": PASSWORD,
                "team_name": f"Web {thread}-{i}",
                "csrfmiddlewaretoken": csrf.group(1) if csrf else "",
            }
            response = browser.post("/signup/", data=form)
            if response.status_code != 302:
                errors.append(f"signup web{thread}-{i}: {response.status_code} {response.text[:200]}")
            browser.cookies.clear()  # logged in now; the next sign-up is a new visitor


def _registry_tests(base: str, token: str, registry_id: int, errors: list[str]) -> None:
    """The web process stores each test and queues it; the worker runs and records it."""
    with httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {token}"}) as api:
        for i in range(REGISTRY_TESTS):
            response = api.post(f"/api/v1/external-registries/{registry_id}/test/", json={"image": f"acme/api:{i}"})
            if response.status_code != 202:
                errors.append(f"registry test {i}: {response.status_code} {response.text[:200]}")


def _cli_loop(env: dict[str, str], loop: int, errors: list[str]) -> None:
    for i in range(CLI_RUNS_PER_LOOP):
        team, email = f"Cli {loop}-{i}", f"cli{loop}-{i}@example.test"
        result = _manage(env, "createteam", team, "--admin-email", email, "--admin-password-stdin", stdin=PASSWORD)
        if result.returncode != 0:
            errors.append(f"createteam {email}: {result.stderr.strip()[-300:]}")


def _count(db: Path, sql: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.mark.slow
def test_web_worker_and_cli_write_the_sqlite_file_at_once_without_errors(tmp_path):
    env = _local_env(tmp_path)
    db = tmp_path / "portal.sqlite3"
    for step in (
        _manage(env, "migrate", "--noinput", "-v0"),
        _manage(
            env, "createteam", "Acme", "--admin-email", "admin@acme.test", "--admin-password-stdin", stdin=PASSWORD
        ),
    ):
        assert step.returncode == 0, step.stderr
    token = _manage(env, "createtoken", "--email", "admin@acme.test", "--team", "Acme").stdout.strip()

    web = start_portal(env, tmp_path / "web.log", "--workers", "2")
    worker_log = tmp_path / "worker.log"
    worker = ExitStack()
    try:
        # `make run`'s broker is the filesystem one in the var dir: the web process sends to its default queue.
        worker.enter_context(celery_worker(worker_log, "--concurrency", "2", queue="celery", env=env, pool="prefork"))
        registry = httpx.post(  # nothing listens there: each test fails fast, and is recorded
            f"{web.url}/api/v1/external-registries/",
            headers={"Authorization": f"Bearer {token}"},
            json={
                "provider": "other",
                "endpoint": f"http://127.0.0.1:{free_port()}",
                "username": "u",
                "password": "p",
                "skip_validation": True,
            },
            timeout=30,
        )
        assert registry.status_code == 201, registry.text

        errors: list[str] = []
        threads = [threading.Thread(target=_signups, args=(web.url, t, errors)) for t in range(SIGNUP_THREADS)]
        threads.append(threading.Thread(target=_registry_tests, args=(web.url, token, registry.json()["id"], errors)))
        threads += [threading.Thread(target=_cli_loop, args=(env, n, errors)) for n in range(CLI_LOOPS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        done = "SELECT count(*) FROM registries_registrytest WHERE finished_at IS NOT NULL"
        deadline = time.monotonic() + 30
        while _count(db, done) < REGISTRY_TESTS and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop(web.process)
        worker.close()

    assert errors == []
    users = 1 + SIGNUP_THREADS * SIGNUPS_PER_THREAD + CLI_LOOPS * CLI_RUNS_PER_LOOP
    assert _count(db, "SELECT count(*) FROM accounts_user") == users
    assert _count(db, "SELECT count(*) FROM accounts_team") == users
    assert _count(db, "SELECT count(*) FROM accounts_membership") == users
    assert _count(db, done) == REGISTRY_TESTS
    # Every test ran to its real end (nothing listens), none broke on the database.
    assert _count(db, "SELECT count(*) FROM registries_registrytest WHERE category = 'internal_error'") == 0
    logs = web.log() + worker_log.read_text()
    assert "database is locked" not in logs and "Traceback" not in logs
    assert "No hostname was supplied" not in logs, "kombu warned at each task the filesystem broker took"
    with sqlite3.connect(db) as conn:  # readers never wait for a writer
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
