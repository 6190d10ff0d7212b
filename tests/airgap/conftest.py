"""Fixtures of the air-gap tests: a ready release of Acme's app on stable with a READY bundle
in the portal's storage (tests/airgap/stored.py), and the license that downloads it."""

from __future__ import annotations

import pytest

from tests.airgap import stored


@pytest.fixture
def release(actor, app):
    return stored.ready_release(actor, app)


@pytest.fixture
def bundle(release, tmp_path):
    """A READY bundle of `release`, a few hundred KiB: ranges cross the 1 MiB read chunks only
    in the tests that ask for a larger one."""
    return stored.store_ready_bundle(release, tmp_path / "bundles")
