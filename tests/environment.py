"""Environment for the test run, set before Django reads its settings."""

import atexit
import os
import shutil
import tempfile
from pathlib import Path

_root = Path(__file__).resolve().parent.parent
os.environ.setdefault("PORTAL_VAR_DIR", str(_root / "var" / "test"))
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("SESSION_COOKIE_SECURE", "0")
os.environ.setdefault("CSRF_COOKIE_SECURE", "0")
os.environ.setdefault("REGISTRIES_ALLOWED_PRIVATE_NETWORKS", "127.0.0.0/8,::1/128")
os.environ.setdefault("REGISTRIES_ALLOW_HTTP", "1")
# No private registry unless a test starts one (never a `make run` registry on :5000).
os.environ.setdefault("REGISTRY_URL", "http://127.0.0.1:9")
# Tests that drive the UI on a live server talk to it over plain HTTP.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
# The suite runs on the real services, as CI does (see scripts/test.sh).
# A database name of its own per run, so concurrent runs on one machine never collide.
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/portal_{os.getpid()}")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/13")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")


def _own_database(url: str, worker: int) -> str:
    """The same Redis, two databases lower per xdist worker (gw0 keeps the given ones)."""
    base, _, number = url.rpartition("/")
    if not number.isdigit() or int(number) < 2 * worker:
        raise SystemExit(f"error: {url} leaves no Redis database for xdist worker {worker}; use a higher one")
    return f"{base}/{int(number) - 2 * worker}"


# Under pytest-xdist each worker is a run of its own: its own Redis databases (tests clear the
# cache and count queue lengths), its own var/ (keys are generated on first use); pytest-django
# already gives each worker its own test database.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker.startswith("gw") and _worker[2:].isdigit():
    _index = int(_worker[2:])
    os.environ["REDIS_URL"] = _own_database(os.environ["REDIS_URL"], _index)
    os.environ["CELERY_BROKER_URL"] = _own_database(os.environ["CELERY_BROKER_URL"], _index)
    os.environ["PORTAL_VAR_DIR"] = str(Path(os.environ["PORTAL_VAR_DIR"]) / _worker)
# Every test client is 127.0.0.1: the per-address token limit is tested with its own value.
os.environ.setdefault("TOKEN_RATE_PER_ADDRESS", "100000")
# Accounts of the cast (admin@acme.test…) exist in every run and Redis outlives a run: the
# per-account lockout is tested with its own values, on addresses of its own.
os.environ.setdefault("LOGIN_FAILURE_LIMIT", "100000")
# Metrics files of this run only (children inherit the variable): counts of earlier runs, or
# of another run's processes, never show up in a test's /metrics.
# Under pytest-xdist each worker has a folder of its own too (the controller's would be
# inherited, and the workers' portals count the same app slugs).
if "PROMETHEUS_MULTIPROC_DIR" not in os.environ or _worker:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix=f"portal-metrics-{_worker}-")
    atexit.register(shutil.rmtree, os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
