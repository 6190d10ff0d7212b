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
# Tests that drive the UI on a live server talk to it over plain HTTP.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
