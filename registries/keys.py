"""The key ring's life cycle: which keys stored ciphertexts use, and re-encrypting under the newest.

Rotation, with no downtime: put a new key first in PORTAL_ENCRYPTION_KEYS and keep the old
ones after it (every process can still read every row), deploy, run
`manage.py rotate_encryption_keys`, and remove an old key only once no row uses it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Q
from django.views.decorators.debug import sensitive_variables

from registries import crypto
from registries.models import ExternalRegistry
from registries.services import _aad

# Every encrypted column: (field, purpose bound into the associated data by services._aad).
ENCRYPTED_FIELDS = (("secret", "secret"), ("minted_token", "minted"))
UNREADABLE = "?"  # stands for a ciphertext whose key id cannot be parsed


@dataclass
class RotationFailure:
    registry_id: int
    field: str
    reason: str  # DecryptionError's text: names a key id at most, never a value


@dataclass
class RotationResult:
    primary: str
    rotated: int = 0  # rows written under the primary key by this run
    failures: list[RotationFailure] = field(default_factory=list)
    remaining: int = 0  # rows still holding a ciphertext under another key after this run


def _prefix(key_id: str) -> str:
    return f"{crypto.VERSION}:{key_id}:"


def _under_other_keys(key_ids: list[str]) -> Q:
    """Rows with at least one ciphertext not under any of `key_ids` (LIKE 'v1:<kid>:%', no decrypting)."""
    conditions = []
    for name, _ in ENCRYPTED_FIELDS:
        condition = ~Q(**{name: ""})
        for key_id in key_ids:
            condition &= ~Q(**{f"{name}__startswith": _prefix(key_id)})
        conditions.append(condition)
    return reduce(or_, conditions)


def _key_id(ciphertext: str) -> str:
    try:
        return crypto.key_id_of(ciphertext)
    except crypto.DecryptionError:
        return UNREADABLE


def encryption_key_usage() -> dict[str, Counter[str]]:
    """{field: Counter(key id -> rows)} over every stored ciphertext (key ids are read, nothing is decrypted)."""
    usage: dict[str, Counter[str]] = {name: Counter() for name, _ in ENCRYPTED_FIELDS}
    names = [name for name, _ in ENCRYPTED_FIELDS]
    for values in ExternalRegistry.objects.order_by().values_list(*names).iterator(chunk_size=2000):
        for name, value in zip(names, values, strict=True):
            if value:
                usage[name][_key_id(value)] += 1
    return usage


def encryption_keys_missing(ring: crypto.KeyRing | None = None) -> list[str]:
    """Key ids that stored ciphertexts name but the ring does not hold; cheap enough for /healthz."""
    ring = ring or crypto.keyring()
    names = [name for name, _ in ENCRYPTED_FIELDS]
    rows = ExternalRegistry.objects.filter(_under_other_keys(list(ring.keys))).order_by().values_list(*names)[:100]
    missing = {_key_id(value) for values in rows for value in values if value}
    return sorted(missing - set(ring.keys))


def encryption_keys_problem() -> str | None:
    """Why stored credentials cannot all be read with this key ring, or None when they can."""
    try:
        ring = crypto.keyring()
    except ImproperlyConfigured as e:
        return str(e)
    missing = encryption_keys_missing(ring)
    if not missing:
        return None
    named = ", ".join("(unreadable format)" if key_id == UNREADABLE else key_id for key_id in missing)
    return (
        f"key id {named} missing from PORTAL_ENCRYPTION_KEYS: stored credentials encrypted with it cannot be "
        "read; add the key back (see manage.py rotate_encryption_keys --dry-run)"
    )


def encryption_keys_rows_to_rotate(ring: crypto.KeyRing | None = None) -> int:
    ring = ring or crypto.keyring()
    return ExternalRegistry.objects.filter(_under_other_keys([ring.primary])).count()


@sensitive_variables("plaintext")
def _rotate_row(registry_id: int, ring: crypto.KeyRing) -> tuple[bool, RotationFailure | None]:
    """Re-encrypt one row's ciphertexts under the primary key, in its own transaction, row locked."""
    names = [name for name, _ in ENCRYPTED_FIELDS]
    with transaction.atomic():
        locked = ExternalRegistry.objects.select_for_update().only("pk", "uid", "team_id", *names)
        registry = locked.filter(pk=registry_id).first()
        if registry is None:
            return False, None  # deleted meanwhile
        changes = {}
        for name, purpose in ENCRYPTED_FIELDS:
            value = getattr(registry, name)
            # Checked again under the lock: a concurrent run or a fresh write may have done it.
            if not value or value.startswith(_prefix(ring.primary)):
                continue
            aad = _aad(registry, purpose)
            try:
                plaintext = crypto.decrypt(value, aad=aad, ring=ring)
            except crypto.DecryptionError as e:
                return False, RotationFailure(registry_id, name, str(e))
            changes[name] = crypto.encrypt(plaintext, aad=aad, ring=ring)
        if changes:
            # update(), not save(): only the ciphertexts change, updated_at stays the vendor's.
            ExternalRegistry.objects.filter(pk=registry_id).update(**changes)
    return bool(changes), None


def encryption_keys_rotate(
    *,
    batch_size: int = 100,
    limit: int | None = None,
    progress: Callable[[RotationResult], None] | None = None,
) -> RotationResult:
    """Re-encrypt every ciphertext not under the primary key. Safe to stop at any point and run again:
    each row is re-encrypted (or not) in its own transaction, and every key still decrypts."""
    ring = crypto.keyring()
    todo = _under_other_keys([ring.primary])
    result = RotationResult(primary=ring.primary)
    last_pk = 0
    while limit is None or result.rotated < limit:
        size = batch_size if limit is None else min(batch_size, limit - result.rotated)
        batch = list(
            ExternalRegistry.objects.filter(todo, pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:size]
        )
        if not batch:
            break
        for registry_id in batch:
            rotated, failure = _rotate_row(registry_id, ring)
            result.rotated += rotated
            if failure:
                result.failures.append(failure)
            last_pk = registry_id
        if progress:
            progress(result)
    result.remaining = ExternalRegistry.objects.filter(todo).count()
    return result
