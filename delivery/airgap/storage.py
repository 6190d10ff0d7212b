"""The bundles' storage, from AIRGAP_STORAGE_URL (portal/objectstore.py)."""

from __future__ import annotations

from functools import cache

from django.conf import settings

from portal.objectstore import ObjectStore, store_from_url


@cache
def _store(url: str, root: str) -> ObjectStore:
    from pathlib import Path

    return store_from_url(url, default_root=Path(root))


def bundle_store() -> ObjectStore:
    """One store per setting value (tests change the setting; boto3 clients are reused)."""
    return _store(settings.AIRGAP_STORAGE_URL, str(settings.VAR_DIR / "airgap"))


def bundle_key(team_id: int, release_id: int) -> str:
    return f"team-{team_id}/release-{release_id}.tar"
