"""The key ring's life cycle: which keys stored ciphertexts use, and re-encrypting under the newest.

Every encrypted column of every app is covered: the list is portal.encrypted_fields (external
registries' secrets and minted tokens, license IDs, ...), read by rotation, the --dry-run
report, the system check and /healthz alike.

Rotation, with no downtime: put a new key first in PORTAL_ENCRYPTION_KEYS and keep the old
ones after it (every process can still read every row), deploy, run
`manage.py rotate_encryption_keys`, and remove an old key only once no row uses it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import reduce
from operator import or_

from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Model, Q
from django.views.decorators.debug import sensitive_variables

from portal import crypto
from portal.encrypted_fields import EncryptedField, encrypted_fields

UNREADABLE = "?"  # stands for a ciphertext whose key id cannot be parsed


@dataclass
class RotationFailure:
    model: str  # model label, e.g. licenses.License
    pk: int
    field: str
    reason: str  # DecryptionError's text: names a key id at most, never a value


@dataclass
class RotationResult:
    primary: str
    rotated: int = 0  # rows written under the primary key by this run
    rotated_fields: Counter[str] = field(default_factory=Counter)  # ciphertexts re-encrypted, per column label
    failures: list[RotationFailure] = field(default_factory=list)
    remaining: int = 0  # rows still holding a ciphertext under another key after this run
    remaining_fields: Counter[str] = field(default_factory=Counter)  # such ciphertexts, per column label


def _by_model() -> dict[type[Model], list[EncryptedField]]:
    models: dict[type[Model], list[EncryptedField]] = defaultdict(list)
    for entry in encrypted_fields():
        models[entry.model].append(entry)
    return models


def _prefix(key_id: str) -> str:
    return f"{crypto.VERSION}:{key_id}:"


def _field_not_under(name: str, key_ids: list[str]) -> Q:
    """A ciphertext in column `name` not under any of `key_ids` (LIKE 'v1:<kid>:%', no decrypting)."""
    condition = Q(**{f"{name}__isnull": False}) & ~Q(**{name: ""})
    for key_id in key_ids:
        condition &= ~Q(**{f"{name}__startswith": _prefix(key_id)})
    return condition


def _row_not_under(entries: list[EncryptedField], key_ids: list[str]) -> Q:
    return reduce(or_, (_field_not_under(entry.field, key_ids) for entry in entries))


def _key_id(ciphertext: str) -> str:
    try:
        return crypto.key_id_of(ciphertext)
    except crypto.DecryptionError:
        return UNREADABLE


def encryption_key_usage() -> dict[str, Counter[str]]:
    """{column label: Counter(key id -> rows)} over every stored ciphertext (key ids are read, nothing
    is decrypted)."""
    usage: dict[str, Counter[str]] = {}
    for entry in encrypted_fields():
        counts: Counter[str] = Counter()
        values = (
            entry.model._default_manager.order_by()
            .exclude(**{entry.field: ""})
            .exclude(**{f"{entry.field}__isnull": True})
        )
        for value in values.values_list(entry.field, flat=True).iterator(chunk_size=2000):
            counts[_key_id(value)] += 1
        usage[entry.label] = counts
    return usage


def encryption_keys_missing(ring: crypto.KeyRing | None = None) -> dict[str, list[str]]:
    """{key id: column labels} for key ids that stored ciphertexts name but the ring does not hold;
    cheap enough for /healthz (one LIMITed query per column, nothing decrypted)."""
    ring = ring or crypto.keyring()
    missing: dict[str, set[str]] = defaultdict(set)
    for entry in encrypted_fields():
        rows = entry.model._default_manager.filter(_field_not_under(entry.field, list(ring.keys)))
        for value in rows.order_by().values_list(entry.field, flat=True)[:100]:
            missing[_key_id(value)].add(entry.label)
    return {key_id: sorted(labels) for key_id, labels in sorted(missing.items())}


def encryption_keys_missing_message(missing: dict[str, list[str]]) -> str:
    """What encryption_keys_missing() found, in words: key ids and columns only, never a key or a value."""
    named = "; ".join(
        f"{'(unreadable format)' if key_id == UNREADABLE else key_id} ({', '.join(labels)})"
        for key_id, labels in missing.items()
    )
    return (
        f"key id {named} missing from PORTAL_ENCRYPTION_KEYS: stored values encrypted with it cannot be "
        "read; add the key back (see manage.py rotate_encryption_keys --dry-run)"
    )


def encryption_keys_problem() -> str | None:
    """Why stored ciphertexts cannot all be read with this key ring, or None when they can."""
    try:
        ring = crypto.keyring()
    except ImproperlyConfigured as e:
        return str(e)
    missing = encryption_keys_missing(ring)
    return encryption_keys_missing_message(missing) if missing else None


def encryption_keys_rows_to_rotate(ring: crypto.KeyRing | None = None) -> dict[str, int]:
    """{model label: rows with a ciphertext not under the primary key}."""
    ring = ring or crypto.keyring()
    return {
        model._meta.label: model._default_manager.filter(_row_not_under(entries, [ring.primary])).count()
        for model, entries in _by_model().items()
    }


@sensitive_variables("plaintext")
def _rotate_row(
    model: type[Model], entries: list[EncryptedField], pk: int, ring: crypto.KeyRing
) -> tuple[list[str], RotationFailure | None]:
    """Re-encrypt one row's ciphertexts under the primary key, in its own transaction, row locked;
    returns the labels of the columns it rewrote."""
    needed = {name for entry in entries for name in (entry.field, *entry.aad_fields)}
    with transaction.atomic():
        row = model._default_manager.select_for_update().only("pk", *needed).filter(pk=pk).first()
        if row is None:
            return [], None  # deleted meanwhile
        changes = {}
        for entry in entries:
            value = getattr(row, entry.field)
            # Checked again under the lock: a concurrent run or a fresh write may have done it.
            if not value or value.startswith(_prefix(ring.primary)):
                continue
            aad = entry.aad(row)
            try:
                plaintext = crypto.decrypt(value, aad=aad, ring=ring)
            except crypto.DecryptionError as e:
                return [], RotationFailure(model._meta.label, pk, entry.field, str(e))
            changes[entry.field] = crypto.encrypt(plaintext, aad=aad, ring=ring)
        if changes:
            # update(), not save(): only the ciphertexts change, updated_at stays the vendor's.
            model._default_manager.filter(pk=pk).update(**changes)
    return [f"{model._meta.label}.{name}" for name in changes], None


def encryption_keys_rotate(
    *,
    batch_size: int = 100,
    limit: int | None = None,
    progress: Callable[[RotationResult], None] | None = None,
) -> RotationResult:
    """Re-encrypt every ciphertext not under the primary key, model by model in primary-key order.
    Safe to stop at any point and run again: each row is re-encrypted (or not) in its own
    transaction, and every key still decrypts. `limit` stops after that many rows (tests)."""
    ring = crypto.keyring()
    result = RotationResult(primary=ring.primary)
    models = _by_model()
    for model, entries in models.items():
        todo = _row_not_under(entries, [ring.primary])
        last_pk = 0
        while limit is None or result.rotated < limit:
            size = batch_size if limit is None else min(batch_size, limit - result.rotated)
            rows = model._default_manager.filter(todo, pk__gt=last_pk).order_by("pk")
            batch = list(rows.values_list("pk", flat=True)[:size])
            if not batch:
                break
            for pk in batch:
                rotated, failure = _rotate_row(model, entries, pk, ring)
                result.rotated += bool(rotated)
                result.rotated_fields.update(rotated)
                if failure:
                    result.failures.append(failure)
                last_pk = pk
            if progress:
                progress(result)
    for model, entries in models.items():
        result.remaining += model._default_manager.filter(_row_not_under(entries, [ring.primary])).count()
        for entry in entries:
            left = model._default_manager.filter(_field_not_under(entry.field, [ring.primary])).count()
            result.remaining_fields[entry.label] = left
    return result
