"""Processes sharing one Redis: each keeps an L1 copy, and one's change reaches the others."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest

from tests.support.cache import (
    CountingLoader,
    delete_prefix,
    eventually,
    redis_service,
    unique_prefix,
    wait_subscribed,
)
from tests.support.services import REDIS_URL
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock
from visualdm.ownership import Domain

pytestmark = pytest.mark.redis


@pytest.fixture
async def pair(clock: FrozenClock) -> AsyncIterator[tuple[CacheService, CacheService, str]]:
    """Two services, as two API processes would hold, on one Redis prefix."""
    prefix = unique_prefix()
    one, two = redis_service(REDIS_URL, prefix, clock), redis_service(REDIS_URL, prefix, clock)
    for service in (one, two):
        await service.start()
        await wait_subscribed(service)
    yield one, two, prefix
    await one.close()
    await two.close()
    await delete_prefix(REDIS_URL, prefix)


async def reads(service: CacheService, expected: object) -> bool:
    return await service.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == expected


async def test_reads_are_served_from_the_local_copy(
    pair: tuple[CacheService, CacheService, str],
) -> None:
    one, _, _ = pair
    load = CountingLoader({"version": 1})
    for _ in range(3):
        await one.read_through(Domain.CHARACTER, 1, load)
    assert one.metrics.value("hits", domain="character", layer="local") == 2
    assert load.calls == 1


async def test_a_write_in_one_process_replaces_the_others_local_copy(
    pair: tuple[CacheService, CacheService, str],
) -> None:
    one, two, _ = pair
    await one.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 1}))
    assert await reads(one, {"version": 1})  # now held locally by `one`
    await two.write_through(Domain.CHARACTER, 1, {"version": 2}, version=2)
    assert await eventually(lambda: reads(one, {"version": 2}), within=2)


async def test_a_tag_invalidation_reaches_the_other_process(
    pair: tuple[CacheService, CacheService, str],
) -> None:
    one, two, _ = pair
    members = CountingLoader([1, 2])
    await one.read_list_through(Domain.FACTION, "4:members", members, tags=["faction:4:members"])
    await two.invalidate_tags(["faction:4:members"])

    async def reloaded() -> bool:
        await one.read_list_through(
            Domain.FACTION, "4:members", members, tags=["faction:4:members"]
        )
        return members.calls == 2

    assert await eventually(reloaded, within=2)


async def test_an_eviction_reaches_the_other_process(
    pair: tuple[CacheService, CacheService, str],
) -> None:
    one, two, _ = pair
    await one.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 1}))
    await two.evict(Domain.CHARACTER, 1)
    assert await eventually(lambda: reads(one, None), within=2)


CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from visualdm.cache.factory import build_cache
    from visualdm.clock import SystemClock
    from visualdm.ownership import Domain
    from visualdm.settings import Settings

    async def main() -> None:
        settings = Settings(redis_url=sys.argv[1], redis_prefix=sys.argv[2])
        cache = build_cache(settings, clock=SystemClock())
        await cache.write_through(Domain.CHARACTER, 1, {"version": 7}, version=7)
        await cache.invalidate_tags(["quest:3:characters"])
        await cache.close()

    asyncio.run(main())
    """
)


async def test_changes_made_by_a_real_subprocess_reach_this_one(
    pair: tuple[CacheService, CacheService, str],
) -> None:
    one, _, prefix = pair
    await one.read_through(Domain.CHARACTER, 1, CountingLoader({"version": 1}))
    quests = CountingLoader(["q"])
    await one.read_list_through(Domain.QUEST, "3:characters", quests, tags=["quest:3:characters"])
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, REDIS_URL, prefix)
    assert await asyncio.wait_for(child.wait(), 60) == 0
    assert await eventually(lambda: reads(one, {"version": 7}), within=2)
    await one.read_list_through(Domain.QUEST, "3:characters", quests, tags=["quest:3:characters"])
    assert quests.calls == 2
