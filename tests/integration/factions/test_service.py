"""Faction CRUD on SQLite and PostgreSQL: create, read, list, update, soft delete, restore."""

from __future__ import annotations

import pytest

from tests.conftest import UowFactory
from tests.integration.factions.conftest import Cast, audit_of, make_faction
from visualdm.errors import NotFound, PermissionDenied, RuleViolation, VersionConflict
from visualdm.factions import service
from visualdm.factions.schemas import FactionFilter, FactionUpdate


async def test_world_generation_creates_a_faction_that_everyone_can_read(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Harpers")
    async with uow() as u:
        got = await service.get_faction(u, actor=cast.alice, faction_id=fid)
    assert (got.name, got.parent_id, got.version) == ("Harpers", None, 1)
    entries = await audit_of(uow, "faction", fid)
    assert [e.action for e in entries] == ["create"]
    assert entries[0].module == "world_generation"
    assert entries[0].actor_user_id == cast.gm.user_id
    assert entries[0].changes["name"] == {"old": None, "new": "Harpers"}


async def test_players_may_read_but_not_write_factions(uow: UowFactory, cast: Cast) -> None:
    fid = await make_faction(uow, cast.gm, "Zhentarim")
    with pytest.raises(PermissionDenied):
        await make_faction(uow, cast.alice, "Mine")
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.update_faction(
                u, actor=cast.alice, faction_id=fid, changes=FactionUpdate(name="Ours")
            )
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.delete_faction(u, actor=cast.bob, faction_id=fid)
    async with uow() as u:
        page = await service.list_factions(u, actor=cast.bob)
        assert [f.name for f in page.items] == ["Zhentarim"]
    assert [e.action for e in await audit_of(uow, "faction", fid)] == ["create"]


async def test_update_changes_only_given_fields_and_audits_old_and_new(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Emerald Enclave")
    async with uow() as u:
        got = await service.update_faction(
            u, actor=cast.gm, faction_id=fid, changes=FactionUpdate(description="Druids")
        )
    assert (got.name, got.description, got.version) == ("Emerald Enclave", "Druids", 2)
    last = (await audit_of(uow, "faction", fid))[-1]
    assert last.action == "update"
    assert last.module == "faction_management"
    assert last.changes == {"description": {"old": "", "new": "Druids"}}


async def test_a_null_name_is_refused_without_writing(uow: UowFactory, cast: Cast) -> None:
    fid = await make_faction(uow, cast.gm, "Lords' Alliance")
    with pytest.raises(RuleViolation, match="name cannot be null"):
        async with uow() as u:
            await service.update_faction(
                u, actor=cast.gm, faction_id=fid, changes=FactionUpdate(name=None)
            )
    async with uow() as u:
        got = await service.get_faction(u, actor=cast.gm, faction_id=fid)
    assert (got.name, got.version) == ("Lords' Alliance", 1)


async def test_a_stale_version_is_a_conflict_that_reports_the_current_version(
    uow: UowFactory, cast: Cast
) -> None:
    fid = await make_faction(uow, cast.gm, "Order of the Gauntlet")
    async with uow() as u:
        await service.update_faction(
            u, actor=cast.gm, faction_id=fid, changes=FactionUpdate(name="B"), expected_version=1
        )
    with pytest.raises(VersionConflict) as caught:
        async with uow() as u:
            await service.update_faction(
                u,
                actor=cast.gm,
                faction_id=fid,
                changes=FactionUpdate(name="C"),
                expected_version=1,
            )
    assert caught.value.current_version == 2
    async with uow() as u:
        assert (await service.get_faction(u, actor=cast.gm, faction_id=fid)).name == "B"
    assert [e.action for e in await audit_of(uow, "faction", fid)] == ["create", "update"]


async def test_soft_deleted_factions_vanish_and_can_be_restored(
    uow: UowFactory, cast: Cast
) -> None:
    keep = await make_faction(uow, cast.gm, "Keep")
    gone = await make_faction(uow, cast.gm, "Gone")
    child = await make_faction(uow, cast.gm, "Gone's child", parent_id=gone)
    async with uow() as u:
        await service.delete_faction(u, actor=cast.gm, faction_id=gone)
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.get_faction(u, actor=cast.gm, faction_id=gone)
        listed = await service.list_factions(u, actor=cast.gm)
        assert [f.id for f in listed.items] == [keep, child]
        with pytest.raises(NotFound):
            await service.update_faction(
                u, actor=cast.gm, faction_id=gone, changes=FactionUpdate(name="x")
            )
        with pytest.raises(NotFound):
            await service.children(u, actor=cast.gm, faction_id=gone)
        # The child is kept under its deleted parent, which it no longer shows as an ancestor.
        assert (await service.get_faction(u, actor=cast.gm, faction_id=child)).parent_id == gone
        assert await service.ancestors(u, actor=cast.gm, faction_id=child) == []
    delete_entry = (await audit_of(uow, "faction", gone))[-1]
    assert delete_entry.action == "delete"
    assert delete_entry.changes["record"]["name"] == "Gone"
    assert delete_entry.changes["children_kept"] == [child]
    async with uow() as u:
        restored = await service.restore_faction(u, actor=cast.gm, faction_id=gone)
    assert restored.name == "Gone"
    async with uow() as u:
        assert [f.id for f in await service.children(u, actor=cast.gm, faction_id=gone)] == [child]
        with pytest.raises(NotFound):
            await service.restore_faction(u, actor=cast.gm, faction_id=keep)


async def test_a_parent_must_be_a_live_faction(uow: UowFactory, cast: Cast) -> None:
    dead = await make_faction(uow, cast.gm, "Dead")
    async with uow() as u:
        await service.delete_faction(u, actor=cast.gm, faction_id=dead)
    with pytest.raises(NotFound, match=f"parent faction {dead}"):
        await make_faction(uow, cast.gm, "Orphan", parent_id=dead)
    with pytest.raises(NotFound, match="parent faction 9999"):
        await make_faction(uow, cast.gm, "Orphan", parent_id=9999)
    async with uow() as u:
        assert (await service.list_factions(u, actor=cast.gm)).items == []


async def test_list_filters_and_cursor_pagination_visit_every_match_once(
    uow: UowFactory, cast: Cast
) -> None:
    root = await make_faction(uow, cast.gm, "Root")
    ids = [await make_faction(uow, cast.gm, f"Guild {i}", parent_id=root) for i in range(7)]
    await make_faction(uow, cast.gm, "Elsewhere")
    seen: list[int] = []
    cursor = None
    async with uow() as u:
        while True:
            page = await service.list_factions(
                u, actor=cast.gm, filters=FactionFilter(parent_id=root), cursor=cursor, limit=3
            )
            seen += [f.id for f in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == ids
        named = await service.list_factions(
            u, actor=cast.gm, filters=FactionFilter(name_contains="GUILD 1")
        )
        assert [f.name for f in named.items] == ["Guild 1"]
        with pytest.raises(RuleViolation):
            await service.list_factions(u, actor=cast.gm, cursor="not-a-cursor")
        with pytest.raises(RuleViolation):
            await service.list_factions(u, actor=cast.gm, limit=0)
