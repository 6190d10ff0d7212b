"""The environment a child process (worker, uvicorn) needs to see what the test sees."""

from __future__ import annotations

import os

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
    from registries import crypto

    crypto.keyring()  # makes sure the generated key file exists
    return (settings.VAR_DIR / "encryption_keys").read_text().strip()
