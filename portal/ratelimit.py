"""Fixed-window counters in a Django cache whose windows really end, on every cache backend.

The window's number is part of the key, so a new window starts from zero whatever the
backend does with expiry. (Django's file and database caches implement `incr` as get + set,
which rewrites the entry with the default timeout: a counter kept as one key never expired
while requests kept coming, and a limit once reached stayed reached.)
"""

from __future__ import annotations

import math
import time

from django.core.cache.backends.base import BaseCache

from portal.cache import RedisCache


def slot(key: str, window: int, now: float | None = None) -> str:
    """The cache key of `key`'s current window of `window` seconds."""
    now = time.time() if now is None else now
    return f"{key}:w{window}:{int(now // window)}"


def hit(cache: BaseCache, key: str, *, window: int) -> int:
    """Count one more in `key`'s current window; returns the count so far. `cache` is a
    backend (`caches[alias]`), not the `cache` proxy, whose type says nothing of its incr."""
    current = slot(key, window)
    ttl = 2 * window  # outlives its window however late in it the first hit came
    if isinstance(cache, RedisCache):
        return cache.count_in_window(current, ttl)  # the same add + incr, one round trip
    cache.add(current, 0, timeout=ttl)
    count = cache.incr(current)
    if type(cache).incr is BaseCache.incr:
        # get + set: the entry now has the default timeout (300 s), shorter than a long window.
        cache.touch(current, ttl)
    return count


def peek(cache: BaseCache, key: str, *, window: int) -> int:
    """The count in `key`'s current window, without adding to it."""
    return int(cache.get(slot(key, window)) or 0)


def seconds_left(window: int) -> int:
    """Seconds until the current window ends (at least 1)."""
    return max(1, math.ceil(window - time.time() % window))
