"""Redis specifics: registry TTLs as PEXPIRE, nothing left without expiry, atomic LWW races."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from tests.support.cache import (
    CountingLoader,
    cache_service,
    delete_prefix,
    redis_service,
    unique_prefix,
)
from tests.support.services import REDIS_URL
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock
from visualdm.ownership import NEGATIVE_CACHE_TTL, Domain, cache_ttl

pytestmark = pytest.mark.redis


@pytest.fixture
async def client() -> AsyncIterator[aioredis.Redis]:
    c = aioredis.Redis.from_url(REDIS_URL)
    yield c
    await c.aclose()


@pytest.fixture
async def cache(clock: FrozenClock) -> AsyncIterator[CacheService]:
    async with cache_service("redis", clock) as service:
        yield service


def ms(domain: Domain) -> int:
    return int(cache_ttl(domain).total_seconds() * 1000)


@pytest.mark.parametrize("domain", [Domain.CHARACTER, Domain.FACTION, Domain.QUEST])
async def test_entries_expire_after_the_registry_ttl(
    cache: CacheService, client: aioredis.Redis, domain: Domain
) -> None:
    await cache.read_through(domain, 42, CountingLoader({"version": 1}), tags=["x:1"])
    key = cache.keys.entity(domain, 42)
    assert key.endswith(f":v1:{domain.value}:42")
    assert ms(domain) - 5_000 < await client.pttl(key) <= ms(domain)
    assert ms(domain) - 5_000 < await client.pttl(cache.keys.tag_set("x:1")) <= ms(domain)


async def test_not_found_expires_after_the_negative_ttl(
    cache: CacheService, client: aioredis.Redis
) -> None:
    await cache.read_through(Domain.QUEST, 7, CountingLoader(None))
    negative_ms = NEGATIVE_CACHE_TTL.total_seconds() * 1000
    assert 0 < await client.pttl(cache.keys.entity(Domain.QUEST, 7)) <= negative_ms


async def test_every_key_the_cache_creates_expires(
    cache: CacheService, client: aioredis.Redis
) -> None:
    """Tag sets, tag counters, entries and tombstones all carry a TTL: Redis cannot grow forever."""
    for i in range(1, 20):
        tags = [f"faction:{i % 3}:members", f"quest:{i % 5}:characters"]
        await cache.read_through(Domain.CHARACTER, i, CountingLoader({"version": 1}), tags=tags)
        await cache.read_list_through(
            Domain.FACTION, f"{i}:members", CountingLoader([i]), tags=tags
        )
    await cache.write_through(Domain.CHARACTER, 1, {"version": 2}, version=2, tags=["quest:1"])
    await cache.evict(Domain.CHARACTER, 2, tags=["faction:1:members"])
    await cache.invalidate_tags(["quest:3:characters"])
    keys = [k async for k in client.scan_iter(match=f"{cache.keys.prefix}:*")]
    assert len(keys) > 40
    ttls = {k: await client.pttl(k) for k in keys}
    assert [k for k, ttl in ttls.items() if ttl < 0] == []


async def test_racing_writers_on_two_clients_leave_the_newest_version(clock: FrozenClock) -> None:
    prefix = unique_prefix()
    one, two = redis_service(REDIS_URL, prefix, clock), redis_service(REDIS_URL, prefix, clock)
    try:
        versions = list(range(1, 201))
        random.shuffle(versions)
        queue: asyncio.Queue[int] = asyncio.Queue()
        for v in versions:
            queue.put_nowait(v)

        async def writer(service: CacheService) -> None:
            # Like request handlers: each writes in turn, several at once per process.
            while not queue.empty():
                v = queue.get_nowait()
                await service.write_through(
                    Domain.CHARACTER, 5, {"version": v}, version=v, tags=["character:5"]
                )

        await asyncio.gather(*[writer(s) for s in (one, two) for _ in range(8)])
        assert one.metrics.value("errors", domain="character", operation="write") == 0
        for service in (one, two):
            found = await service.read_through(Domain.CHARACTER, 5, CountingLoader(None))
            assert found == {"version": 200}
    finally:
        await one.close()
        await two.close()
        await delete_prefix(REDIS_URL, prefix)


async def test_a_stale_fill_racing_a_write_on_another_client_loses(clock: FrozenClock) -> None:
    prefix = unique_prefix()
    reader, writer = (
        redis_service(REDIS_URL, prefix, clock),
        redis_service(REDIS_URL, prefix, clock),
    )
    try:
        gate = asyncio.Event()
        slow = CountingLoader({"version": 1, "name": "stale"}, gate=gate)
        reading = asyncio.create_task(reader.read_through(Domain.CHARACTER, 3, slow))
        await slow.entered.wait()
        await writer.write_through(Domain.CHARACTER, 3, {"version": 2}, version=2)
        gate.set()
        await reading
        found = await reader.read_through(Domain.CHARACTER, 3, CountingLoader(None))
        assert found == {"version": 2}
    finally:
        await reader.close()
        await writer.close()
        await delete_prefix(REDIS_URL, prefix)


async def test_a_foreign_value_under_a_cache_key_reads_as_a_miss_and_is_replaced(
    cache: CacheService, client: aioredis.Redis
) -> None:
    key = cache.keys.entity(Domain.CHARACTER, 8)
    await client.set(key, b"not a cache entry", px=60_000)
    load = CountingLoader({"version": 1})
    assert await cache.read_through(Domain.CHARACTER, 8, load) == {"version": 1}
    await cache.write_through(Domain.CHARACTER, 8, {"version": 2}, version=2)
    assert await cache.read_through(Domain.CHARACTER, 8, load) == {"version": 2}
    assert cache.metrics.value("errors", domain="character", operation="write") == 0
