"""The faction services drive the cache hooks with the spec's tags (5.4), after commit only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from tests.integration.factions.conftest import Cast, make_character, make_faction
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.factions import service
from visualdm.factions.schemas import FactionUpdate
from visualdm.ownership import Domain


class RecordingCache:
    """A cache that stores nothing and records every call the services make."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    async def read_through(
        self,
        domain: Domain,
        entity_id: int,
        load: Callable[[], Awaitable[Any]],
        *,
        tags: Sequence[str],
    ) -> Any:
        self.calls.append(("read", domain, entity_id, tuple(tags)))
        return await load()

    async def read_list_through(
        self,
        domain: Domain,
        name: str,
        load: Callable[[], Awaitable[list[Any]]],
        *,
        tags: Sequence[str],
    ) -> list[Any]:
        self.calls.append(("list", domain, name, tuple(tags)))
        return await load()

    async def write_through(
        self, domain: Domain, entity_id: int, value: Any, *, version: int, tags: Sequence[str]
    ) -> None:
        self.calls.append(("write", domain, entity_id, version, tuple(tags)))

    async def evict(
        self, domain: Domain, entity_id: int, *, tags: Sequence[str], version: int | None = None
    ) -> None:
        self.calls.append(("evict", domain, entity_id, tuple(tags)))

    async def invalidate_tags(self, tags: Sequence[str]) -> None:
        self.calls.append(("invalidate", tuple(tags)))


async def test_writes_reach_the_cache_with_the_faction_and_member_tags(
    database: Database, clock: FrozenClock, cast: Cast
) -> None:
    cache = RecordingCache()

    def uow() -> Any:
        return unit_of_work(database, clock=clock, cache=cache)

    fid = await make_faction(uow, cast.gm, "Harpers")
    tags = (f"faction:{fid}", f"faction:{fid}:members")
    assert cache.calls == [("write", Domain.FACTION, fid, 1, tags)]
    cid = await make_character(uow, cast.alice)
    cache.calls.clear()
    async with uow() as u:
        await service.update_faction(
            u, actor=cast.gm, faction_id=fid, changes=FactionUpdate(name="H")
        )
        await service.join_faction(u, actor=cast.gm, faction_id=fid, character_id=cid)
        assert cache.calls == []  # nothing reaches the cache before the commit
    assert cache.calls == [
        ("write", Domain.FACTION, fid, 2, tags),
        ("invalidate", (f"faction:{fid}:members",)),
    ]
    cache.calls.clear()
    async with uow() as u:
        await service.get_faction(u, actor=cast.bob, faction_id=fid)
        await service.list_members(u, actor=cast.bob, faction_id=fid, limit=10)
    assert cache.calls == [
        ("read", Domain.FACTION, fid, tags),
        ("list", Domain.FACTION, f"{fid}:members:0:10", (f"faction:{fid}:members",)),
        (
            "list",
            Domain.FACTION,
            f"{fid}:members:0:10:live",
            (f"faction:{fid}:members", f"character:{cid}"),
        ),
    ]
    cache.calls.clear()
    async with uow() as u:
        await service.delete_faction(u, actor=cast.gm, faction_id=fid)
    assert cache.calls == [("evict", Domain.FACTION, fid, tags)]
