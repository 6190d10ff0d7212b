"""Fixtures of the install kit tests."""

from __future__ import annotations

import pytest

from registries import services as registries


@pytest.fixture
def quay(actor):
    """A registry named `quay` (never contacted here: the kit only names it)."""
    return registries.registry_create(
        actor=actor, provider="other", endpoint="https://quay.io", name="quay", username="u", password="p",
        skip_validation=True,
    )  # fmt: skip
