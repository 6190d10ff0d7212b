"""The shared cache every process sees (Redis in production, files under var/ locally)."""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.signals import setting_changed
from django.dispatch import receiver

_shared_cache: BaseCache | None = None


@receiver(setting_changed)
def _forget_shared_cache(*, setting: str, **kwargs) -> None:
    global _shared_cache
    if setting == "CACHES":
        _shared_cache = None


def shared_cache() -> BaseCache:
    """One cache client for the whole process: Django's `cache` is per request context, which
    under ASGI means a new Redis connection for every proxy request."""
    global _shared_cache
    if _shared_cache is None:
        _shared_cache = caches.create_connection("default")
    return _shared_cache
