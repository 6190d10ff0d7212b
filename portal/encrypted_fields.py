"""The one list of encrypted columns: key rotation, the key-usage report, the system check and
/healthz all read it, so a column added here is rotated and checked everywhere at once.

Each app registers its columns beside the associated data it binds into them (its services
module, imported by its AppConfig.ready()); this module imports no app, so there is no cycle.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Model


@dataclass(frozen=True)
class EncryptedField:
    model: type[Model]
    field: str
    aad: Callable[[Any], str]  # the row's associated data, as the app's encrypt() call computes it
    aad_fields: tuple[str, ...]  # the columns aad() reads, so rotation loads rows with .only()

    @property
    def label(self) -> str:
        """`app_label.Model.field`, as reports and error messages name the column."""
        return f"{self.model._meta.label}.{self.field}"


_registry: dict[str, EncryptedField] = {}


def register_encrypted_field(
    model: type[Model], field: str, *, aad: Callable[[Any], str], aad_fields: tuple[str, ...]
) -> EncryptedField:
    """Declare that `model.field` holds a crypto.encrypt() ciphertext bound to `aad(row)`."""
    for name in (field, *aad_fields):
        model._meta.get_field(name)  # a typo fails at start-up, not halfway through a rotation
    entry = EncryptedField(model, field, aad, tuple(aad_fields))
    _registry[entry.label] = entry  # registering again (a second ready()) replaces, never duplicates
    return entry


def encrypted_fields() -> list[EncryptedField]:
    """Every registered column, in registration order (INSTALLED_APPS order)."""
    return list(_registry.values())
