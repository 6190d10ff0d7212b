"""The shared cache every process sees (Redis in production, files under var/ locally)."""

from __future__ import annotations

from django.core.cache import caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
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


class ReusingRedisCacheClient(RedisCacheClient):
    """Django's client, keeping one redis.Redis per connection pool. Django builds a new
    redis.Redis for every operation, and redis-py 8 fills ~170 response callbacks each time:
    ~0.1 ms of CPU per cache call, seven calls per token request (bench/tokens.py)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, object] = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._clients.get(id(pool))
        if client is None:  # a redis.Redis is thread-safe: its pool hands out connections
            client = self._clients.setdefault(id(pool), self._client(connection_pool=pool))
        return client

    def count_in_window(self, key: str, ttl: int) -> int:
        """One more in the counter `key`, created with `ttl` seconds to live: one round trip
        (SET NX EX, then INCR, pipelined) where add + incr took three (incr asks EXISTS first)."""
        pipeline = self.get_client(key, write=True).pipeline(transaction=False)
        pipeline.set(key, self._serializer.dumps(0), ex=ttl, nx=True)
        pipeline.incr(key)
        return int(pipeline.execute()[1])


class RedisCache(DjangoRedisCache):
    """Django's Redis cache with ReusingRedisCacheClient, and a counter in one round trip."""

    def __init__(self, server, params) -> None:
        super().__init__(server, params)
        self._class = ReusingRedisCacheClient

    def count_in_window(self, key: str, ttl: int) -> int:
        """One more in `key` (created with `ttl` seconds to live); returns the count so far."""
        return self._cache.count_in_window(self.make_and_validate_key(key), ttl)
