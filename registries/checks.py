"""System checks for the credential key ring (registered in RegistriesConfig.ready)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError

from portal import crypto, keys


@register(Tags.security)
def check_encryption_keys_parse(app_configs, **kwargs):
    """A malformed key ring stops start-up instead of failing on the first credential."""
    if not settings.PORTAL_ENCRYPTION_KEYS:
        return []
    try:
        crypto.parse_keyring(settings.PORTAL_ENCRYPTION_KEYS)
    except ImproperlyConfigured as e:
        return [
            Error(
                str(e),
                hint="Each entry is id:base64key with a 32-byte key; `manage.py generate_encryption_key` prints one.",
                id="registries.E001",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_encryption_keys_from_environment(app_configs, **kwargs):
    if settings.PORTAL_ENCRYPTION_KEYS:
        return []
    return [
        Warning(
            "PORTAL_ENCRYPTION_KEYS is not set: stored credentials are encrypted with a key generated into "
            "the var/ directory, which is meant for local installs only.",
            hint="Set PORTAL_ENCRYPTION_KEYS (or PORTAL_ENCRYPTION_KEYS_FILE) from a secret store; "
            "`manage.py generate_encryption_key` prints a new entry. Keep it out of the database and its backups.",
            id="registries.W001",
        )
    ]


@register(Tags.database)
def check_encryption_keys_cover_stored_values(app_configs, databases=None, **kwargs):
    """Every ciphertext of every encrypted column (portal.encrypted_fields) names a key the ring holds.
    A database check: runs with `manage.py check --database default` and before `migrate`."""
    if not databases:
        return []
    try:
        ring = crypto.keyring()
    except ImproperlyConfigured:
        return []  # registries.E001 says why
    try:
        missing = keys.encryption_keys_missing(ring)
    except DatabaseError:
        return []  # not migrated yet: nothing is stored
    if not missing:
        return []
    return [
        Error(
            keys.encryption_keys_missing_message(missing),
            hint="Put the old key back after the new one in PORTAL_ENCRYPTION_KEYS, run "
            "`manage.py rotate_encryption_keys`, and drop the old key only when --dry-run shows no row uses it.",
            id="registries.E002",
        )
    ]
