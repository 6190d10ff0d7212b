"""Authenticated encryption of stored credentials under a key ring from the environment.

PORTAL_ENCRYPTION_KEYS = "k2:<base64 32 bytes>,k1:<base64 32 bytes>": the first key encrypts,
every key decrypts. A ciphertext names its key id and is bound to its row by associated
data, so it cannot be pasted into another row. Small and pure: no ORM, no logging.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from dataclasses import dataclass
from functools import cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.views.decorators.debug import sensitive_variables

VERSION = "v1"
KEY_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
NONCE_BYTES = 12


class DecryptionError(Exception):
    """A stored secret cannot be read: unknown key id, corrupt, or not this row's."""


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    primary: str
    generated: bool = False  # made up locally because the environment named no keys

    def __repr__(self) -> str:
        return f"KeyRing(ids={list(self.keys)}, primary={self.primary!r})"


def generate_key(key_id: str | None = None) -> str:
    """A new `id:base64key` entry for PORTAL_ENCRYPTION_KEYS."""
    key_id = key_id or "k" + secrets.token_hex(4)
    return f"{key_id}:{base64.urlsafe_b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


@sensitive_variables()
def parse_keyring(value: str, *, name: str = "PORTAL_ENCRYPTION_KEYS") -> KeyRing:
    keys: dict[str, bytes] = {}
    for position, entry in enumerate(item.strip() for item in value.split(",") if item.strip()):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not KEY_ID_RE.match(key_id):
            raise ImproperlyConfigured(
                f"{name}: entry {position + 1} must look like id:base64key (id: A-Z a-z 0-9 _ -)"
            )
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            raise ImproperlyConfigured(f"{name}: key {key_id!r} is not base64") from None
        if len(key) != 32:
            raise ImproperlyConfigured(f"{name}: key {key_id!r} must be 32 bytes (256 bits), not {len(key)}")
        if key_id in keys:
            raise ImproperlyConfigured(f"{name}: key id {key_id!r} appears twice")
        keys[key_id] = key
    if not keys:
        raise ImproperlyConfigured(f"{name} names no keys")
    return KeyRing(keys=keys, primary=next(iter(keys)))


@cache
def _keyring_for(value: str, var_dir: str) -> KeyRing:
    if value:
        return parse_keyring(value)
    # Local installs: a key generated into var/ on first use, like SECRET_KEY.
    path = os.path.join(var_dir, "encryption_keys")
    if not os.path.exists(path):
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            f.write(generate_key("local1"))
    with open(path) as f:
        ring = parse_keyring(f.read().strip(), name=path)
    return KeyRing(keys=ring.keys, primary=ring.primary, generated=True)


def keyring() -> KeyRing:
    return _keyring_for(settings.PORTAL_ENCRYPTION_KEYS, str(settings.VAR_DIR))


@sensitive_variables("plaintext", "ring")
def encrypt(plaintext: str, *, aad: str, ring: KeyRing | None = None) -> str:
    ring = ring or keyring()
    nonce = secrets.token_bytes(NONCE_BYTES)
    sealed = AESGCM(ring.keys[ring.primary]).encrypt(nonce, plaintext.encode(), aad.encode())
    return f"{VERSION}:{ring.primary}:{base64.urlsafe_b64encode(nonce + sealed).decode()}"


def key_id_of(ciphertext: str) -> str:
    version, key_id, _ = _split(ciphertext)
    return key_id


def _split(ciphertext: str) -> tuple[str, str, str]:
    parts = (ciphertext or "").split(":")
    if len(parts) != 3 or parts[0] != VERSION:
        raise DecryptionError("the stored secret is not in a format this portal understands")
    return parts[0], parts[1], parts[2]


@sensitive_variables("ring", "key")
def decrypt(ciphertext: str, *, aad: str, ring: KeyRing | None = None) -> str:
    ring = ring or keyring()
    _, key_id, body = _split(ciphertext)
    key = ring.keys.get(key_id)
    if key is None:
        raise DecryptionError(
            f"the stored secret was encrypted with key {key_id!r}, which PORTAL_ENCRYPTION_KEYS does not hold"
        )
    try:
        raw = base64.urlsafe_b64decode(body)
        return AESGCM(key).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad.encode()).decode()
    except (InvalidTag, binascii.Error, ValueError):
        raise DecryptionError("the stored secret is corrupt or belongs to another record") from None
