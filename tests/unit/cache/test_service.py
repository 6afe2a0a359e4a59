"""The cache service's behaviour, on the memory backend with time moved by a FrozenClock.

tests/integration/cache/test_contract.py runs the clock-independent ones on real Redis too.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.support.cache import CountingLoader
from visualdm.cache.keys import InvalidCacheKey, UnserializableCacheValue
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock
from visualdm.ownership import NEGATIVE_CACHE_TTL, Domain, cache_ttl

SECOND = timedelta(seconds=1)


def hero(version: int = 1, name: str = "Aria") -> dict[str, object]:
    return {"id": 1, "name": name, "version": version}


async def test_read_through_loads_once_then_serves_the_cached_value(cache: CacheService) -> None:
    load = CountingLoader(hero())
    first = await cache.read_through(Domain.CHARACTER, 1, load)
    second = await cache.read_through(Domain.CHARACTER, 1, load)
    assert (first, second, load.calls) == (hero(), hero(), 1)


async def test_each_caller_gets_its_own_copy(cache: CacheService) -> None:
    load = CountingLoader(hero())
    first = await cache.read_through(Domain.CHARACTER, 1, load)
    assert first is not None
    first["name"] = "mutated"  # type: ignore[index]
    assert await cache.read_through(Domain.CHARACTER, 1, load) == hero()


@pytest.mark.parametrize("domain", [Domain.CHARACTER, Domain.FACTION, Domain.QUEST])
async def test_entries_expire_after_the_registry_ttl(
    cache: CacheService, clock: FrozenClock, domain: Domain
) -> None:
    load = CountingLoader(hero())
    await cache.read_through(domain, 1, load)
    clock.advance(cache_ttl(domain) - SECOND)
    await cache.read_through(domain, 1, load)
    assert load.calls == 1
    clock.advance(2 * SECOND)
    await cache.read_through(domain, 1, load)
    assert load.calls == 2


def test_registry_ttls_are_the_spec_ones() -> None:
    assert [cache_ttl(d) for d in (Domain.CHARACTER, Domain.FACTION, Domain.QUEST)] == [
        timedelta(minutes=5),
        timedelta(minutes=15),
        timedelta(minutes=10),
    ]


async def test_not_found_is_cached_briefly(cache: CacheService, clock: FrozenClock) -> None:
    load = CountingLoader(None)
    assert await cache.read_through(Domain.QUEST, 9, load) is None
    assert await cache.read_through(Domain.QUEST, 9, load) is None
    assert load.calls == 1
    clock.advance(NEGATIVE_CACHE_TTL + SECOND)
    assert await cache.read_through(Domain.QUEST, 9, load) is None
    assert load.calls == 2


async def test_a_write_replaces_a_negative_entry(cache: CacheService) -> None:
    await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None))
    await cache.write_through(Domain.CHARACTER, 1, hero(1), version=1)
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(1)


async def test_an_older_version_never_replaces_a_newer_one(
    cache: CacheService, clock: FrozenClock
) -> None:
    await cache.write_through(Domain.CHARACTER, 1, hero(3, "new"), version=3)
    clock.advance(SECOND)  # later in time, but older in version: still loses
    await cache.write_through(Domain.CHARACTER, 1, hero(2, "old"), version=2)
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(3, "new")


async def test_same_version_is_ordered_by_timestamp(
    cache: CacheService, clock: FrozenClock
) -> None:
    await cache.write_through(Domain.CHARACTER, 1, hero(2, "first"), version=2)
    clock.advance(SECOND)
    await cache.write_through(Domain.CHARACTER, 1, hero(2, "second"), version=2)
    clock.advance(-2 * SECOND)
    await cache.write_through(Domain.CHARACTER, 1, hero(2, "earlier"), version=2)
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(2, "second")


async def test_a_slow_read_cannot_overwrite_a_newer_write(cache: CacheService) -> None:
    gate = asyncio.Event()
    slow = CountingLoader(hero(1, "stale"), gate=gate)
    reading = asyncio.create_task(cache.read_through(Domain.CHARACTER, 1, slow))
    await slow.entered.wait()
    await cache.write_through(Domain.CHARACTER, 1, hero(2, "fresh"), version=2)
    gate.set()
    assert await reading == hero(1, "stale")  # the reader itself gets what it loaded
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(2, "fresh")


async def test_a_load_racing_an_invalidation_is_not_cached(cache: CacheService) -> None:
    gate = asyncio.Event()
    slow = CountingLoader(["stale member"], gate=gate)
    reading = asyncio.create_task(
        cache.read_list_through(Domain.FACTION, "3:members", slow, tags=["faction:3:members"])
    )
    await slow.entered.wait()
    await cache.invalidate_tags(["faction:3:members"])
    gate.set()
    await reading
    fresh = CountingLoader(["fresh member"])
    lists = await cache.read_list_through(
        Domain.FACTION, "3:members", fresh, tags=["faction:3:members"]
    )
    assert lists == ["fresh member"]


async def test_write_through_invalidates_dependants_but_keeps_the_new_value(
    cache: CacheService,
) -> None:
    members = CountingLoader([1, 2])
    await cache.read_list_through(Domain.FACTION, "7:members", members, tags=["character:1"])
    await cache.write_through(Domain.CHARACTER, 1, hero(2), version=2, tags=["character:1"])
    await cache.read_list_through(Domain.FACTION, "7:members", members, tags=["character:1"])
    assert members.calls == 2
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(2)


async def test_invalidation_drops_exactly_the_tagged_entries(cache: CacheService) -> None:
    a, b = CountingLoader(["a"]), CountingLoader(["b"])
    await cache.read_list_through(Domain.QUEST, "1:characters", a, tags=["quest:1:characters"])
    await cache.read_list_through(Domain.QUEST, "2:characters", b, tags=["quest:2:characters"])
    await cache.invalidate_tags(["quest:1:characters"])
    await cache.read_list_through(Domain.QUEST, "1:characters", a, tags=["quest:1:characters"])
    await cache.read_list_through(Domain.QUEST, "2:characters", b, tags=["quest:2:characters"])
    assert (a.calls, b.calls) == (2, 1)


async def test_evict_hides_the_entity_and_blocks_stale_refills(
    cache: CacheService, clock: FrozenClock
) -> None:
    await cache.write_through(Domain.CHARACTER, 1, hero(2), version=2)
    clock.advance(SECOND)
    await cache.evict(Domain.CHARACTER, 1)
    load = CountingLoader(hero(2))
    assert await cache.read_through(Domain.CHARACTER, 1, load) is None
    assert load.calls == 0
    clock.advance(-2 * SECOND)  # a write from before the delete arrives late
    await cache.write_through(Domain.CHARACTER, 1, hero(3), version=3)
    assert await cache.read_through(Domain.CHARACTER, 1, load) is None


async def test_a_write_after_evict_restores(cache: CacheService, clock: FrozenClock) -> None:
    await cache.evict(Domain.CHARACTER, 1)
    clock.advance(SECOND)
    await cache.write_through(Domain.CHARACTER, 1, hero(4), version=4)
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(4)


async def test_a_restore_replaces_a_versioned_tombstone_at_the_same_instant(
    cache: CacheService,
) -> None:
    await cache.evict(Domain.CHARACTER, 1, version=3)
    await cache.write_through(Domain.CHARACTER, 1, hero(2), version=2)  # a late, older write
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(hero(2))) is None
    await cache.write_through(Domain.CHARACTER, 1, hero(4), version=4)  # the restore
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(4)


async def test_a_late_delete_does_not_hide_a_newer_restore(cache: CacheService) -> None:
    await cache.write_through(Domain.CHARACTER, 1, hero(4), version=4)
    await cache.evict(Domain.CHARACTER, 1, version=3)
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == hero(4)


async def test_concurrent_misses_cause_one_load(cache: CacheService) -> None:
    gate = asyncio.Event()
    load = CountingLoader(hero(), gate=gate)
    readers = [cache.read_through(Domain.CHARACTER, 1, load) for _ in range(100)]
    pending = asyncio.gather(*readers)
    await load.entered.wait()
    await asyncio.sleep(0.05)  # let every reader reach the cache while the load is pending
    gate.set()
    results = await pending
    assert load.calls == 1
    assert results == [hero()] * 100
    assert cache.metrics.value("loads", domain="character") == 1


async def test_a_failing_load_fails_every_waiter_and_caches_nothing(cache: CacheService) -> None:
    gate = asyncio.Event()

    async def broken() -> dict[str, object]:
        await gate.wait()
        raise RuntimeError("database down")

    pending = asyncio.gather(
        *[cache.read_through(Domain.CHARACTER, 1, broken) for _ in range(5)],
        return_exceptions=True,
    )
    await asyncio.sleep(0.01)
    gate.set()
    assert all(isinstance(r, RuntimeError) for r in await pending)
    load = CountingLoader(hero())
    assert await cache.read_through(Domain.CHARACTER, 1, load) == hero()
    assert load.calls == 1


async def test_a_cancelled_leader_does_not_fail_its_waiters(cache: CacheService) -> None:
    gate = asyncio.Event()
    load = CountingLoader(hero(), gate=gate)
    leader = asyncio.create_task(cache.read_through(Domain.CHARACTER, 1, load))
    await load.entered.wait()
    waiter = asyncio.create_task(cache.read_through(Domain.CHARACTER, 1, load))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    gate.set()
    assert await waiter == hero()
    with pytest.raises(asyncio.CancelledError):
        await leader


async def test_metrics_count_hits_misses_loads_and_invalidations(cache: CacheService) -> None:
    load = CountingLoader(hero())
    await cache.read_through(Domain.CHARACTER, 1, load)
    await cache.read_through(Domain.CHARACTER, 1, load)
    await cache.invalidate_tags(["character:1"])
    m = cache.metrics
    assert m.value("misses", domain="character") == 1
    hits = [m.value("hits", domain="character", layer=layer) for layer in ("local", "shared")]
    assert sum(hits) == 1
    assert m.value("loads", domain="character") == 1
    assert m.value("invalidations", domain="character") == 1


@pytest.mark.parametrize("bad_id", [0, -5, True])
async def test_bad_ids_are_refused_before_loading(cache: CacheService, bad_id: int) -> None:
    load = CountingLoader(hero())
    with pytest.raises(InvalidCacheKey):
        await cache.read_through(Domain.CHARACTER, bad_id, load)
    assert load.calls == 0


async def test_bad_tags_are_refused(cache: CacheService) -> None:
    with pytest.raises(InvalidCacheKey):
        await cache.invalidate_tags(["character:1", "no spaces"])


async def test_unserializable_loaded_values_are_refused_and_not_cached(
    cache: CacheService,
) -> None:
    with pytest.raises(UnserializableCacheValue):
        await cache.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 1, "x": {1}}))
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) is None


async def test_a_loaded_entity_without_version_is_refused(cache: CacheService) -> None:
    with pytest.raises(UnserializableCacheValue, match="version"):
        await cache.read_through(Domain.CHARACTER, 1, CountingLoader({"id": 1}))
