"""Fixed-window counters (portal/ratelimit.py) on the cache backends the portal runs with."""

from __future__ import annotations

import time

import pytest
from django.conf import settings
from django.core.cache.backends.filebased import FileBasedCache
from django.core.cache.backends.redis import RedisCache

from portal import ratelimit
from portal.cache import RedisCache as PortalRedisCache

BACKENDS = ["file", "redis", "portal-redis"]


def _cache(name: str, tmp_path, **params):
    if name == "file":  # the embedded default (`make run`, no REDIS_URL)
        return FileBasedCache(str(tmp_path), params)
    if name == "portal-redis":  # production's: one pipelined round trip per hit
        return PortalRedisCache(settings.REDIS_URL, params)
    return RedisCache(settings.REDIS_URL, params)


@pytest.mark.parametrize("backend", BACKENDS)
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_new_window_starts_from_zero(backend, tmp_path):
    cache = _cache(backend, tmp_path)
    key = f"ratelimit-test:{time.time_ns()}"
    time.sleep(1 - time.time() % 1 + 0.02)
    assert [ratelimit.hit(cache, key, window=1) for _ in range(3)] == [1, 2, 3]
    time.sleep(1 - time.time() % 1 + 0.02)
    assert ratelimit.peek(cache, key, window=1) == 0
    assert ratelimit.hit(cache, key, window=1) == 1


def test_a_pipelined_count_lives_twice_its_window_and_reads_back_through_the_cache(monkeypatch):
    """The portal's Redis backend counts in one round trip (SET NX EX + INCR): the counter gets
    the same time to live as add() gave it, peek() reads it, and no other command is sent."""
    cache = PortalRedisCache(settings.REDIS_URL, {})
    key = f"ratelimit-test:{time.time_ns()}"
    client = cache._cache.get_client(write=True)
    sent = []
    execute = type(client).execute_command
    monkeypatch.setattr(
        type(client), "execute_command", lambda self, *a, **k: sent.append(a[0]) or execute(self, *a, **k)
    )
    assert [ratelimit.hit(cache, key, window=60) for _ in range(3)] == [1, 2, 3]
    assert sent == []  # everything went through pipelines, one per hit
    assert 60 < client.ttl(cache.make_key(ratelimit.slot(key, 60))) <= 120
    assert ratelimit.peek(cache, key, window=60) == 3


def test_the_portal_redis_cache_keeps_one_client_per_connection_pool():
    cache = PortalRedisCache(settings.REDIS_URL, {})
    first = cache._cache.get_client(write=True)
    cache.set("ratelimit-test:client", 1, timeout=5)
    assert cache.get("ratelimit-test:client") == 1
    assert cache._cache.get_client(write=True) is first
