"""build_cache picks the backend from settings and connects to nothing until used."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from visualdm.cache.factory import build_cache
from visualdm.cache.local import LocalCache
from visualdm.cache.memory import MemoryBackend
from visualdm.cache.redis import RedisBackend
from visualdm.clock import FrozenClock
from visualdm.settings import Settings


async def test_without_a_redis_url_the_cache_is_in_process(clock: FrozenClock) -> None:
    cache = build_cache(Settings(redis_url=None), clock=clock)
    assert isinstance(cache.backend, MemoryBackend)
    assert (cache.local, cache.listener) == (None, None)
    await cache.close()


async def test_with_a_redis_url_the_cache_uses_redis_with_a_local_layer(clock: FrozenClock) -> None:
    registry = CollectorRegistry()
    cache = build_cache(
        Settings(redis_url="redis://127.0.0.1:1/0", redis_prefix="app"),
        clock=clock,
        registry=registry,
    )
    assert isinstance(cache.backend, RedisBackend)
    assert isinstance(cache.local, LocalCache)
    assert cache.listener is not None
    assert not cache.listener.started
    assert cache.keys.prefix == "app"
    assert cache.metrics.registry is registry
    await cache.close()


async def test_the_local_layer_can_be_turned_off(clock: FrozenClock) -> None:
    cache = build_cache(Settings(redis_url="redis://127.0.0.1:1/0"), clock=clock, local=False)
    assert cache.local is None
    await cache.close()
