"""Fixed-window counters (portal/ratelimit.py) on the cache backends the portal runs with."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache

from portal import ratelimit


def _cache(name: str, tmp_path, **params):
    if name == "file":  # the embedded default (`make run`, no REDIS_URL)
        return FileBasedCache(str(tmp_path), params)
    return RedisCache(settings.REDIS_URL, params)


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_count_lasts_its_whole_window_even_past_the_cache_default_timeout(backend, tmp_path):
    """The file cache's incr re-sets the entry with the default timeout (here 1 s): a window
    longer than that must not lose its count half-way."""
    cache = _cache(backend, tmp_path, TIMEOUT=1)
    key = f"ratelimit-test:{time.time_ns()}"
    if time.time() % 60 > 55:  # not across a window boundary
        time.sleep(60 - time.time() % 60 + 0.05)
    assert [ratelimit.hit(cache, key, window=60) for _ in range(3)] == [1, 2, 3]
    time.sleep(1.5)
    assert ratelimit.peek(cache, key, window=60) == 3


@pytest.mark.parametrize("backend", ["file", "redis"])
def test_a_new_window_starts_from_zero(backend, tmp_path):
    cache = _cache(backend, tmp_path)
    key = f"ratelimit-test:{time.time_ns()}"
    time.sleep(1 - time.time() % 1 + 0.02)
    assert [ratelimit.hit(cache, key, window=1) for _ in range(3)] == [1, 2, 3]
    time.sleep(1 - time.time() % 1 + 0.02)
    assert ratelimit.peek(cache, key, window=1) == 0
    assert ratelimit.hit(cache, key, window=1) == 1
