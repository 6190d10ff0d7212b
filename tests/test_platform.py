"""Settings, schema, health, logging and queue behaviour of the platform itself."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from portal.logging import RedactSecretsFilter, redact
from portal.lru import LRU

ROOT = Path(__file__).resolve().parent.parent


def test_check_deploy_is_clean_with_production_settings(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "DEBUG": "0",
        "SECRET_KEY": "x" * 20 + "-production-secret-key-with-enough-entropy-1234567890",
        "ALLOWED_HOSTS": "portal.example.com",
        "PORTAL_VAR_DIR": str(tmp_path),
        "DATABASE_URL": "sqlite:///" + str(tmp_path / "db.sqlite3"),
        "PORTAL_ENCRYPTION_KEYS": "k1:" + "A" * 43 + "=",  # any 32-byte key; production sets its own
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_bad_setting_stops_start_up_with_its_name(tmp_path):
    env = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(tmp_path), "DEBUG": "maybe"}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "DEBUG must be a boolean" in result.stderr


def test_secret_key_is_generated_into_var_once(tmp_path):
    env = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(tmp_path), "DEBUG": "1"}
    code = "from django.conf import settings; print(settings.SECRET_KEY)"
    run = lambda: subprocess.run(  # noqa: E731
        [
            sys.executable,
            "-c",
            f"import django, os; os.environ['DJANGO_SETTINGS_MODULE']='portal.settings'; django.setup(); {code}",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    ).stdout.strip()
    first, second = run(), run()
    assert len(first) >= 50 and first == second
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/v1/schema/?format=json").json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/apps/" in schema["paths"]
    docs = client.get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in docs
    assert "cdn." not in docs and "unpkg" not in docs and "jsdelivr" not in docs


@pytest.mark.django_db
def test_healthz_reports_ok(client):
    assert client.get("/healthz").json() == {"status": "ok"}


@pytest.mark.django_db
def test_unknown_api_routes_answer_json_404(admin_api):
    response = admin_api.get("/api/v1/apps/no-such-app/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    unknown = admin_api.get("/api/v1/no-such-endpoint/")
    assert unknown.status_code == 404
    assert unknown.json() == {"code": "not_found", "message": "No API endpoint at /api/v1/no-such-endpoint/."}


def test_an_api_body_nested_too_deeply_is_a_400_parse_error(admin_api):
    deep = "[" * 100_000 + "]" * 100_000
    response = admin_api.post("/api/v1/apps/", data=deep, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == {"code": "parse_error", "message": "JSON parse error - nested too deeply"}


def test_redaction_blanks_credentials_in_log_text():
    text = redact("GET https://bob:hunter2@example.com Authorization: Bearer abc.def password=s3cret token: xyz")
    for secret in ("hunter2", "abc.def", "s3cret", "xyz"):
        assert secret not in text


def test_the_redaction_filter_is_on_the_root_loggers_handlers(caplog):
    handlers = logging.getLogger().handlers
    assert any(isinstance(f, RedactSecretsFilter) for h in handlers for f in h.filters)


def test_enqueue_fails_fast_with_a_clear_error_when_the_broker_is_down(tmp_path):
    script = (
        "import django, time; django.setup()\n"
        "from accounts.tasks import invites_purge_expired_task\n"
        "from portal.queue import QueueUnavailable, enqueue\n"
        "started = time.monotonic()\n"
        "try:\n"
        "    enqueue(invites_purge_expired_task)\n"
        "except QueueUnavailable as e:\n"
        "    print('refused after', round(time.monotonic() - started, 1), 's:', e)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "portal.settings",
        "PORTAL_VAR_DIR": str(tmp_path),
        "CELERY_BROKER_URL": "redis://127.0.0.1:1/0",  # nothing listens on port 1
    }
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert "refused after" in result.stdout, result.stdout + result.stderr
    assert "The task queue is unavailable" in result.stdout
    assert time.monotonic() - started < 15  # interpreter start-up included; the refusal itself is < 5 s
    assert float(result.stdout.split("after ")[1].split(" s")[0]) < 5


def test_the_lru_keeps_at_most_its_size_dropping_the_least_recently_used():
    cache = LRU(3)
    for key in "abc":
        cache[key] = key.upper()
    assert cache.get("a") == "A"  # a is now the most recent
    cache["d"] = "D"
    assert list(cache) == ["c", "a", "d"] and len(cache) == 3
    assert cache.get("b") is None and cache.get("b", "gone") == "gone"
    cache["c"] = "C2"  # setting refreshes too
    cache["e"] = "E"
    assert list(cache) == ["d", "c", "e"]
    assert cache.pop("c") == "C2" and cache.pop("c") is None


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("UPSTREAM_MAX_CONNECTIONS_PER_HOST", "0", "must be at least 1"),
        ("UPSTREAM_MAX_CONNECTIONS_PER_TEAM", "lots", "must be an integer"),
        ("UPSTREAM_POOL_WAIT", "-1", "must be at least 0"),
        ("UPSTREAM_FIRST_BYTE_TIMEOUT", "nan", "must be at least 0.1"),
        ("UPSTREAM_CONNECT_TIMEOUT", "5s", "must be a number"),
        ("REGISTRY_TEST_RATE", "0", "must be at least 1"),
        ("REGISTRIES_ALLOWED_PORTS", "443,https", "is not a port or a range"),
    ],
)
def test_a_bad_limit_or_timeout_setting_stops_start_up_naming_it(tmp_path, name, value, reason):
    env = {"PATH": os.environ["PATH"], "PORTAL_VAR_DIR": str(tmp_path), name: value}
    result = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert name in result.stderr and reason in result.stderr, result.stderr[-500:]
