"""Redis down or hung: requests fall back to the loader; recovery needs no restart and serves
nothing from before an update it missed. Runs on a private redis-server, never the shared one.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tests.support.cache import (
    CountingLoader,
    ThrowawayRedis,
    eventually,
    redis_service,
    unique_prefix,
    wait_subscribed,
)
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock
from visualdm.ownership import CACHE_RETRY_AFTER, Domain

pytestmark = pytest.mark.redis


@pytest.fixture
async def server() -> AsyncIterator[ThrowawayRedis]:
    redis = ThrowawayRedis()
    await redis.start()
    yield redis
    redis.stop()


@pytest.fixture
async def cache(server: ThrowawayRedis, clock: FrozenClock) -> AsyncIterator[CacheService]:
    service = redis_service(server.url, unique_prefix(), clock)
    await service.start()
    await wait_subscribed(service)
    yield service
    await service.close()


def errors(cache: CacheService) -> float:
    ops = ("get", "fill", "write", "evict", "invalidate", "recover")
    return sum(cache.metrics.value("errors", domain="character", operation=op) for op in ops)


async def test_reads_fall_back_to_the_loader_while_redis_is_down_and_recover(
    server: ThrowawayRedis, cache: CacheService, clock: FrozenClock
) -> None:
    await cache.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 1}))
    server.stop()
    # Until the listener sees the socket close, the L1 copy may still be served (and is current).
    assert await eventually(lambda: _disconnected(cache), within=5)
    database = CountingLoader({"version": 2})
    for _ in range(3):
        assert await cache.read_through(Domain.CHARACTER, 1, database) == {"version": 2}
    assert database.calls == 3
    assert errors(cache) >= 1
    await cache.write_through(Domain.CHARACTER, 1, {"version": 3}, version=3)  # must not raise

    await server.start()
    await wait_subscribed(cache)  # the listener reconnects by itself
    clock.advance(CACHE_RETRY_AFTER)
    after = CountingLoader({"version": 3})
    assert await cache.read_through(Domain.CHARACTER, 1, after) == {"version": 3}
    assert await cache.read_through(Domain.CHARACTER, 1, after) == {"version": 3}
    assert after.calls == 1  # cached again


async def test_an_update_missed_while_redis_hung_is_never_served_after_it_returns(
    server: ThrowawayRedis, cache: CacheService, clock: FrozenClock
) -> None:
    await cache.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 1}))
    members = CountingLoader([1])
    await cache.read_list_through(Domain.FACTION, "2:members", members, tags=["faction:2:members"])
    server.pause()  # connections stay open, nothing answers: every call times out
    try:
        async with asyncio.timeout(10):  # a hang guard, not a timing assertion
            await cache.write_through(Domain.CHARACTER, 1, {"version": 2}, version=2)
            await cache.invalidate_tags(["faction:2:members"])
            database = CountingLoader({"version": 2})
            assert await cache.read_through(Domain.CHARACTER, 1, database) == {"version": 2}
    finally:
        server.resume()
    clock.advance(CACHE_RETRY_AFTER)
    # Redis still holds version 1 and the old member list; the replay must drop both first.
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 2})) == {
        "version": 2
    }
    await cache.read_list_through(Domain.FACTION, "2:members", members, tags=["faction:2:members"])
    assert members.calls == 2


async def test_another_process_stops_serving_its_local_copy_when_it_loses_redis(
    server: ThrowawayRedis, cache: CacheService, clock: FrozenClock
) -> None:
    other = redis_service(server.url, cache.keys.prefix, clock)
    await other.start()
    await wait_subscribed(other)
    try:
        await other.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 1}))
        server.stop()
        assert other.listener is not None
        assert await eventually(lambda: _disconnected(other), within=5)
        database = CountingLoader({"version": 2})
        assert await other.read_through(Domain.CHARACTER, 1, database) == {"version": 2}
        assert database.calls == 1
    finally:
        await other.close()


async def _disconnected(service: CacheService) -> bool:
    return service.listener is not None and not service.listener.connected
