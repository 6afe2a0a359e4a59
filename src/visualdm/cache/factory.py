"""Builds the cache a process uses: Redis (with L1 and pub/sub) when configured, else memory."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from visualdm.cache.invalidation import InvalidationListener
from visualdm.cache.keys import CacheKeys
from visualdm.cache.local import LocalCache
from visualdm.cache.memory import MemoryBackend
from visualdm.cache.metrics import CacheMetrics
from visualdm.cache.redis import RedisBackend
from visualdm.cache.service import CacheService
from visualdm.clock import Clock
from visualdm.settings import Settings


def build_cache(
    settings: Settings,
    *,
    clock: Clock,
    registry: CollectorRegistry | None = None,
    local: bool = True,
) -> CacheService:
    """Return the cache for `settings` (Redis if `redis_url` is set); call `close()` when done.

    Nothing connects until first use. `local=False` turns off the process-local L1 layer.
    """
    keys = CacheKeys(settings.redis_prefix)
    metrics = CacheMetrics(registry)
    if settings.redis_url is None:
        return CacheService(MemoryBackend(clock), keys=keys, clock=clock, metrics=metrics)
    # Sized like the auth pool: under load every request may hold one cache connection too.
    backend = RedisBackend.from_url(
        settings.redis_url, keys, max_connections=settings.redis_pool_size
    )
    listener = InvalidationListener(backend.client, keys.channel, origin=backend.origin)
    return CacheService(
        backend,
        keys=keys,
        clock=clock,
        metrics=metrics,
        local=LocalCache(clock) if local else None,
        listener=listener,
    )
