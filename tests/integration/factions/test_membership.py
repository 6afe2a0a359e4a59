"""Faction membership: joins, leaves, standing, and the reads the Quest System relies on."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from tests.conftest import UowFactory
from tests.integration.factions.conftest import (
    Cast,
    audit_of,
    make_character,
    make_faction,
)
from visualdm.characters import service as characters
from visualdm.errors import Conflict, NotFound, PermissionDenied, RuleViolation
from visualdm.factions import service
from visualdm.factions.models import CharacterFaction


async def _rows(uow: UowFactory) -> list[tuple[int, int, str, int]]:
    async with uow() as u:
        rows = await u.session.scalars(select(CharacterFaction).order_by(CharacterFaction.id))
        return [(r.faction_id, r.character_id, r.rank, r.standing) for r in rows.all()]


async def test_a_gm_makes_a_character_join_and_leave(uow: UowFactory, cast: Cast) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    cid = await make_character(uow, cast.alice)
    async with uow() as u:
        joined = await service.join_faction(
            u, actor=cast.gm, faction_id=fid, character_id=cid, rank="agent"
        )
    assert (joined.rank, joined.standing) == ("agent", 0)
    async with uow() as u:
        assert await service.is_member(u, character_id=cid, faction_id=fid)
        mine = await service.memberships_of(u, actor=cast.alice, character_id=cid)
        assert [m.faction_id for m in mine] == [fid]
        await service.leave_faction(u, actor=cast.gm, faction_id=fid, character_id=cid)
    async with uow() as u:
        assert not await service.is_member(u, character_id=cid, faction_id=fid)
    entries = await audit_of(uow, "faction_membership", f"{fid}:{cid}")
    assert [e.action for e in entries] == ["join", "leave"]
    assert entries[0].changes["rank"] == {"old": None, "new": "agent"}
    assert entries[1].changes["record"]["rank"] == "agent"


async def test_joining_twice_is_a_clear_conflict_and_changes_nothing(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    cid = await make_character(uow, cast.alice)
    async with uow() as u:
        await service.join_faction(u, actor=cast.gm, faction_id=fid, character_id=cid)
    with pytest.raises(Conflict, match=f"character {cid} is already a member of faction {fid}"):
        async with uow() as u:
            await service.join_faction(
                u, actor=cast.gm, faction_id=fid, character_id=cid, rank="leader"
            )
    assert await _rows(uow) == [(fid, cid, "member", 0)]
    assert len(await audit_of(uow, "faction_membership", f"{fid}:{cid}")) == 1


async def test_unknown_or_deleted_ids_are_not_found_and_leave_no_trace(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    dead_faction = await make_faction(uow, cast.gm, "Fallen")
    cid = await make_character(uow, cast.alice)
    dead_character = await make_character(uow, cast.alice, "Ghost")
    async with uow() as u:
        await service.delete_faction(u, actor=cast.gm, faction_id=dead_faction)
        await characters.delete_character(u, actor=cast.gm, character_id=dead_character)
    for faction_id, character_id in (
        (9999, cid),
        (dead_faction, cid),
        (fid, 9999),
        (fid, dead_character),
    ):
        with pytest.raises(NotFound):
            async with uow() as u:
                await service.join_faction(
                    u, actor=cast.gm, faction_id=faction_id, character_id=character_id
                )
        with pytest.raises(NotFound):
            async with uow() as u:
                await service.adjust_standing(
                    u, actor=cast.gm, faction_id=faction_id, character_id=character_id, delta=5
                )
    with pytest.raises(NotFound, match="not a member"):
        async with uow() as u:
            await service.leave_faction(u, actor=cast.gm, faction_id=fid, character_id=cid)
    with pytest.raises(NotFound):
        async with uow() as u:
            await service.memberships_of(u, actor=cast.gm, character_id=dead_character)
    with pytest.raises(RuleViolation):
        async with uow() as u:
            await service.join_faction(u, actor=cast.gm, faction_id=fid, character_id=cid, rank="")
    assert await _rows(uow) == []
    assert await audit_of(uow, "faction_membership", f"{fid}:{cid}") == []


async def test_players_cannot_join_or_leave_on_their_own(uow: UowFactory, cast: Cast) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    cid = await make_character(uow, cast.alice)
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.join_faction(u, actor=cast.alice, faction_id=fid, character_id=cid)
    async with uow() as u:
        await service.join_faction(u, actor=cast.gm, faction_id=fid, character_id=cid)
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.leave_faction(u, actor=cast.alice, faction_id=fid, character_id=cid)
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.adjust_standing(
                u, actor=cast.alice, faction_id=fid, character_id=cid, delta=100
            )
    assert await _rows(uow) == [(fid, cid, "member", 0)]


async def test_standing_is_clamped_and_a_stranger_joins_as_an_associate(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    cid = await make_character(uow, cast.alice)
    async with uow() as u:
        first = await service.adjust_standing(
            u, actor=cast.gm, faction_id=fid, character_id=cid, delta=250
        )
    assert (first.rank, first.standing) == ("associate", 100)
    async with uow() as u:
        down = await service.adjust_standing(
            u, actor=cast.gm, faction_id=fid, character_id=cid, delta=-130
        )
        floor = await service.adjust_standing(
            u, actor=cast.gm, faction_id=fid, character_id=cid, delta=-500
        )
    assert (down.standing, floor.standing) == (-30, -100)
    entries = await audit_of(uow, "faction_membership", f"{fid}:{cid}")
    assert [e.action for e in entries] == ["join", "update", "update"]
    assert entries[1].changes == {"standing": {"old": 100, "new": -30}}
    assert await _rows(uow) == [(fid, cid, "associate", -100)]


async def test_a_failure_later_in_the_transaction_undoes_the_standing_change(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    cid = await make_character(uow, cast.alice)

    async def reward_then_fail() -> None:
        async with uow() as u:
            await service.adjust_standing(
                u, actor=cast.gm, faction_id=fid, character_id=cid, delta=7
            )
            await service.join_faction(u, actor=cast.gm, faction_id=9999, character_id=cid)

    with pytest.raises(NotFound):
        await reward_then_fail()
    assert await _rows(uow) == []
    assert await audit_of(uow, "faction_membership", f"{fid}:{cid}") == []


async def test_members_page_through_and_hide_deleted_characters_and_factions(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    other = await make_faction(uow, cast.gm, "Zhentarim")
    cids = [await make_character(uow, cast.alice, f"Hero {i}") for i in range(5)]
    async with uow() as u:
        for cid in cids:
            await service.join_faction(u, actor=cast.gm, faction_id=fid, character_id=cid)
        await service.join_faction(u, actor=cast.gm, faction_id=other, character_id=cids[0])
        await characters.delete_character(u, actor=cast.gm, character_id=cids[3])
    seen: list[int] = []
    cursor = None
    async with uow() as u:
        while True:
            page = await service.list_members(
                u, actor=cast.bob, faction_id=fid, cursor=cursor, limit=2
            )
            seen += [m.character_id for m in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [cids[0], cids[1], cids[2], cids[4]]
        await service.delete_faction(u, actor=cast.gm, faction_id=other)
    async with uow() as u:
        mine = await service.memberships_of(u, actor=cast.gm, character_id=cids[0])
        assert [m.faction_id for m in mine] == [fid]
        assert not await service.is_member(u, character_id=cids[0], faction_id=other)
        with pytest.raises(NotFound):
            await service.list_members(u, actor=cast.gm, faction_id=other)


async def test_a_racing_duplicate_join_is_a_conflict_not_an_integrity_error(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    cid = await make_character(uow, cast.alice)

    async def join() -> None:
        async with uow() as u:
            await service.join_faction(u, actor=cast.gm, faction_id=fid, character_id=cid)

    async with uow() as first:
        await service.join_faction(first, actor=cast.gm, faction_id=fid, character_id=cid)
        second = asyncio.create_task(join())
        await asyncio.sleep(0.5)
        # Blocked on the uncommitted row (PostgreSQL) or the write lock (SQLite).
        assert not second.done()
    with pytest.raises(Conflict, match="already a member"):
        await second
    assert await _rows(uow) == [(fid, cid, "member", 0)]
