"""Quest reads through the memory and Redis caches stay correct after every kind of write."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.conftest import UowFactory
from tests.integration.quests.conftest import Cast, make_hero, make_quest
from tests.support.cache import BACKENDS, cache_service
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.errors import NotFound
from visualdm.events.bus import InProcessBus
from visualdm.quests import service
from visualdm.quests.schemas import QuestUpdate


@pytest.fixture(params=BACKENDS)
async def cache(request: pytest.FixtureRequest, clock: FrozenClock) -> AsyncIterator[CacheService]:
    """A started cache service, memory or Redis."""
    async with cache_service(request.param, clock) as started:
        yield started


@pytest.fixture
def cached(
    database: Database, clock: FrozenClock, bus: InProcessBus, cache: CacheService
) -> UowFactory:
    """Units of work on the test database that read and write through `cache`."""
    return lambda: unit_of_work(database, clock=clock, bus=bus, cache=cache)


async def test_a_cached_quest_follows_updates_deletes_and_restores(
    uow: UowFactory, cached: UowFactory, cast: Cast, clock: FrozenClock
) -> None:
    qid = await make_quest(uow, cast.gm, status="draft")

    async def title_seen_by_gm() -> str:
        async with cached() as u:
            return (await service.get_quest(u, actor=cast.gm, quest_id=qid)).title

    assert await title_seen_by_gm() == "Wolves"
    # The cached copy is a draft, and a player still must not see it.
    with pytest.raises(NotFound):
        async with cached() as u:
            await service.get_quest(u, actor=cast.alice, quest_id=qid)
    async with cached() as u:
        await service.update_quest(
            u, actor=cast.gm, quest_id=qid, changes=QuestUpdate(title="Dire wolves")
        )
    assert await title_seen_by_gm() == "Dire wolves"
    async with cached() as u:
        await service.delete_quest(u, actor=cast.gm, quest_id=qid)
    with pytest.raises(NotFound):
        await title_seen_by_gm()
    # A deletion's tombstone yields only to a later write (last-writer-wins by time).
    clock.advance(timedelta(seconds=1))
    async with cached() as u:
        await service.restore_quest(u, actor=cast.gm, quest_id=qid)
    assert await title_seen_by_gm() == "Dire wolves"


async def test_a_cached_quest_list_of_a_character_follows_assignment_changes(
    uow: UowFactory, cached: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm, objectives=[{"id": "wolves", "target": 3}])
    hero = await make_hero(uow, cast.alice)

    async def listed() -> list[tuple[int, str, dict[str, int]]]:
        async with cached() as u:
            got = await service.assignments_of_character(u, actor=cast.alice, character_id=hero)
        return [(a.quest_id, a.status, a.progress) for a in got]

    assert await listed() == []
    async with cached() as u:
        await service.assign_quest(u, actor=cast.gm, quest_id=qid, character_id=hero)
    assert await listed() == [(qid, "assigned", {})]
    async with cached() as u:
        await service.update_progress(
            u, actor=cast.gm, quest_id=qid, character_id=hero, progress={"wolves": 2}
        )
    assert await listed() == [(qid, "in_progress", {"wolves": 2})]
    async with cached() as u:
        await service.delete_quest(u, actor=cast.gm, quest_id=qid)
    assert await listed() == []
    async with cached() as u:
        await service.restore_quest(u, actor=cast.gm, quest_id=qid)
    assert await listed() == [(qid, "in_progress", {"wolves": 2})]
