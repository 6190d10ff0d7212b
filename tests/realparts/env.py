"""The environment a child process (worker, uvicorn) needs to see what the test sees."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from django.conf import settings
from django.db import connection


def child_env(**overrides: str) -> dict[str, str]:
    """Same database (the test's), var dir, key ring, lookup and signing keys as this process."""
    db = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "PORTAL_VAR_DIR": str(settings.VAR_DIR),
        "PORTAL_ENCRYPTION_KEYS": settings.PORTAL_ENCRYPTION_KEYS or _local_keyring(),
        "LICENSE_LOOKUP_KEY": settings.LICENSE_LOOKUP_KEY,
        "REGISTRY_TOKEN_KEY_FILE": settings.REGISTRY_TOKEN_KEY_FILE,
        **overrides,
    }


def _local_keyring() -> str:
    from portal import crypto

    crypto.keyring()  # makes sure the generated key file exists
    return (settings.VAR_DIR / "encryption_keys").read_text().strip()


def wait_for_http(
    url: str, process: subprocess.Popen, *, what: str, log: Callable[[], str], timeout: float = 30
) -> None:
    """Until `url` answers at all (any HTTP status counts); fails the test if the process dies."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(url, timeout=1)  # noqa: S310 (loopback)
            return
        except urllib.error.HTTPError:
            return  # up, and answering (e.g. 401 asking for a token)
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"{what} did not start:\n{log()}")
            time.sleep(0.1)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
