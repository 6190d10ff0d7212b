"""Environment for the test run, set before Django reads its settings."""

import os
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
# Every test client is 127.0.0.1: the per-address token limit is tested with its own value.
os.environ.setdefault("TOKEN_RATE_PER_ADDRESS", "100000")
# Accounts of the cast (admin@acme.test…) exist in every run and Redis outlives a run: the
# per-account lockout is tested with its own values, on addresses of its own.
os.environ.setdefault("LOGIN_FAILURE_LIMIT", "100000")
