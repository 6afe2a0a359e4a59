"""The real character, faction and quest services with a real cache (memory and Redis) on SQLite
and PostgreSQL: the cache changes only after commit, and each spec 5.4 trigger keeps every
cached read equal to an uncached one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.support.world import add_user
from visualdm.access.principals import UserActor
from visualdm.cache.service import CacheService
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate, CharacterUpdate
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import UnitOfWork, unit_of_work
from visualdm.factions import service as factions
from visualdm.factions.schemas import FactionCreate, FactionUpdate
from visualdm.ownership import Domain, Role
from visualdm.quests import service as quests
from visualdm.quests.schemas import QuestCreate, QuestUpdate

Uow = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@dataclass
class World:
    cached: Uow
    plain: Uow
    cache: CacheService
    gm: UserActor
    alice: UserActor

    async def same(self, read: Callable[[UnitOfWork], Awaitable[Any]]) -> Any:
        """Run `read` through the cache and without it; they must agree. Returns the value."""
        async with self.cached() as u:
            through_cache = await read(u)
        async with self.plain() as u:
            from_database = await read(u)
        assert through_cache == from_database
        return through_cache

    def loads(self, domain: Domain) -> float:
        return self.cache.metrics.value("loads", domain=domain.value)


@pytest.fixture(name="w")
async def world(database: Database, clock: FrozenClock, cache: CacheService) -> World:
    def cached() -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(database, clock=clock, cache=cache)

    def plain() -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(database, clock=clock)

    async with plain() as u:
        gm = await add_user(u.session, "gamemaster", Role.GM)
        alice = await add_user(u.session, "alice", Role.PLAYER)
    return World(cached, plain, cache, gm, alice)


async def new_character(w: World, name: str = "Aria") -> int:
    async with w.cached() as u:
        made = await characters.create_character(
            u, actor=w.alice, data=CharacterCreate(name=name, race="elf")
        )
    return made.id


def get_character(w: World, cid: int) -> Callable[[UnitOfWork], Awaitable[Any]]:
    return lambda u: characters.get_character(u, actor=w.gm, character_id=cid)


async def test_write_through_happens_after_commit_only(w: World) -> None:
    cid = await new_character(w)
    assert (await w.same(get_character(w, cid))).version == 1
    async with w.cached() as writing:
        await characters.update_character(
            writing, actor=w.gm, character_id=cid, changes=CharacterUpdate(name="Bryn")
        )
        async with w.cached() as reader:  # another request, while the write is uncommitted
            seen = await characters.get_character(reader, actor=w.gm, character_id=cid)
        assert (seen.name, seen.version) == ("Aria", 1)
    loads = w.loads(Domain.CHARACTER)
    found = await w.same(get_character(w, cid))
    assert (found.name, found.version) == ("Bryn", 2)
    assert w.loads(Domain.CHARACTER) == loads  # served by the write-through, not reloaded


async def test_a_rolled_back_update_leaves_the_cache_untouched(w: World) -> None:
    cid = await new_character(w)
    await w.same(get_character(w, cid))

    async def failing_request() -> None:
        async with w.cached() as u:
            await characters.update_character(
                u, actor=w.gm, character_id=cid, changes=CharacterUpdate(name="Ghost")
            )
            raise RuntimeError("the request failed after the update")

    with pytest.raises(RuntimeError):
        await failing_request()
    stored = await w.cache.backend.get(w.cache.keys.entity(Domain.CHARACTER, cid))
    assert stored is not None
    assert b'"Aria"' in stored.payload
    assert (await w.same(get_character(w, cid))).name == "Aria"


async def test_character_update_and_delete_reach_its_dependants(w: World) -> None:
    cid = await new_character(w)
    async with w.cached() as u:
        fid = (await factions.create_faction(u, actor=w.gm, data=FactionCreate(name="Harpers"))).id
        await factions.join_faction(u, actor=w.gm, faction_id=fid, character_id=cid)

    def members(u: UnitOfWork) -> Awaitable[Any]:
        return factions.list_members(u, actor=w.gm, faction_id=fid)

    assert [m.character_id for m in (await w.same(members)).items] == [cid]
    async with w.cached() as u:
        await characters.update_character(
            u, actor=w.gm, character_id=cid, changes=CharacterUpdate(level=3)
        )
    assert (await w.same(get_character(w, cid))).level == 3
    async with w.cached() as u:
        await characters.delete_character(u, actor=w.gm, character_id=cid)
    assert (await w.same(members)).items == []  # the member list drops the deleted character
    async with w.cached() as u:
        await characters.restore_character(u, actor=w.gm, character_id=cid)
    assert [m.character_id for m in (await w.same(members)).items] == [cid]
    assert (await w.same(get_character(w, cid))).level == 3


async def test_faction_update_reaches_the_faction_and_its_member_list(w: World) -> None:
    cid, other = await new_character(w), await new_character(w, "Bryn")
    async with w.cached() as u:
        fid = (await factions.create_faction(u, actor=w.gm, data=FactionCreate(name="Zhent"))).id
        await factions.join_faction(u, actor=w.gm, faction_id=fid, character_id=cid)

    def faction(u: UnitOfWork) -> Awaitable[Any]:
        return factions.get_faction(u, actor=w.gm, faction_id=fid)

    def members(u: UnitOfWork) -> Awaitable[Any]:
        return factions.list_members(u, actor=w.gm, faction_id=fid)

    await w.same(faction)
    await w.same(members)
    async with w.cached() as u:
        await factions.update_faction(
            u, actor=w.gm, faction_id=fid, changes=FactionUpdate(name="Black Network")
        )
        await factions.join_faction(u, actor=w.gm, faction_id=fid, character_id=other)
    assert (await w.same(faction)).name == "Black Network"
    assert sorted(m.character_id for m in (await w.same(members)).items) == sorted([cid, other])
    async with w.cached() as u:
        await factions.leave_faction(u, actor=w.gm, faction_id=fid, character_id=cid)
    assert [m.character_id for m in (await w.same(members)).items] == [other]


async def test_quest_update_reaches_the_quest_and_character_quest_lists(w: World) -> None:
    cid = await new_character(w)
    async with w.cached() as u:
        data = QuestCreate.model_validate({"title": "Wolves", "status": "available"})
        qid = (await quests.create_quest(u, actor=w.gm, data=data)).id

    def quest(u: UnitOfWork) -> Awaitable[Any]:
        return quests.get_quest(u, actor=w.gm, quest_id=qid)

    def quest_list(u: UnitOfWork) -> Awaitable[Any]:
        return quests.assignments_of_character(u, actor=w.gm, character_id=cid)

    assert await w.same(quest_list) == []
    await w.same(quest)
    async with w.cached() as u:
        await quests.assign_quest(u, actor=w.gm, quest_id=qid, character_id=cid)
    assert [a.quest_id for a in await w.same(quest_list)] == [qid]
    async with w.cached() as u:
        await quests.update_quest(
            u, actor=w.gm, quest_id=qid, changes=QuestUpdate(title="Wolves at the gate")
        )
    assert (await w.same(quest)).title == "Wolves at the gate"
    await w.same(quest_list)
    async with w.cached() as u:
        await quests.delete_quest(u, actor=w.gm, quest_id=qid)
    assert await w.same(quest_list) == []
    async with w.cached() as u:
        await quests.restore_quest(u, actor=w.gm, quest_id=qid)
    assert [a.quest_id for a in await w.same(quest_list)] == [qid]
    assert (await w.same(quest)).title == "Wolves at the gate"
