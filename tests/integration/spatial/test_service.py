"""Spatial services on SQLite and PostgreSQL: create, LWW moves, collisions, delete, rebuild."""

from __future__ import annotations

import math
from datetime import timedelta

import pytest

from tests.conftest import UowFactory
from tests.support.world import add_user
from visualdm.access.principals import UserActor
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import FrozenClock
from visualdm.errors import NotFound, PermissionDenied, RuleViolation
from visualdm.ownership import Role
from visualdm.spatial import service
from visualdm.spatial.collisions import Blocked
from visualdm.spatial.index import Bounds
from visualdm.spatial.schemas import WorldEntityCreate, WorldEntityUpdate
from visualdm.spatial.world import World


@pytest.fixture
def world() -> World:
    return World(Bounds(-1000, -1000, 1000, 1000))


async def _gm(uow: UowFactory, name: str = "gamemaster", role: Role = Role.GM) -> UserActor:
    async with uow() as u:
        return await add_user(u.session, name, role)


async def _place(uow: UowFactory, world: World, gm: UserActor, **kw: object) -> int:
    body = {"kind": "house", "x": 0.0, "y": 0.0, "width": 10.0, "height": 10.0, **kw}
    async with uow() as u:
        made = await service.create_entity(u, world, actor=gm, data=WorldEntityCreate(**body))
    return int(made.key.split(":")[1])


async def test_create_move_and_delete_keep_database_and_index_in_step(
    uow: UowFactory, world: World, clock: FrozenClock
) -> None:
    gm = await _gm(uow)
    eid = await _place(uow, world, gm, kind="npc", width=1.0, height=1.0, is_solid=False)
    assert world.index.get(f"entity:{eid}") is not None
    clock.advance(timedelta(seconds=1))
    async with uow() as u:
        moved = await service.update_entity(
            u, world, actor=gm, entity_id=eid, changes=WorldEntityUpdate(x=50.0, y=60.0)
        )
    assert moved.applied
    placed = world.index.get(f"entity:{eid}")
    assert placed is not None
    assert (placed.x, placed.y) == (50.0, 60.0)
    async with uow() as u:
        got = await service.get_entity(u, actor=gm, entity_id=eid)
    assert (got.x, got.y) == (50.0, 60.0)
    async with uow() as u:
        await service.delete_entity(u, world, actor=gm, entity_id=eid)
    assert world.index.get(f"entity:{eid}") is None
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.get_entity(u, actor=gm, entity_id=eid)


async def test_an_older_move_is_ignored_and_reported(
    uow: UowFactory, world: World, clock: FrozenClock
) -> None:
    gm = await _gm(uow)
    eid = await _place(uow, world, gm, is_solid=False)
    old = clock.now() - timedelta(seconds=5)
    async with uow() as u:
        got = await service.update_entity(
            u, world, actor=gm, entity_id=eid, changes=WorldEntityUpdate(x=9.0, at=old)
        )
    assert not got.applied
    assert got.reason == "a newer position is already stored"
    assert (got.entity.x, got.entity.y) == (0.0, 0.0)


async def test_a_solid_mover_is_pushed_out_and_told_why(
    uow: UowFactory, world: World, clock: FrozenClock
) -> None:
    gm = await _gm(uow)
    house = await _place(uow, world, gm)
    cart = await _place(uow, world, gm, kind="cart", x=100.0, width=2.0, height=2.0)
    clock.advance(timedelta(seconds=1))
    async with uow() as u:
        got = await service.update_entity(
            u, world, actor=gm, entity_id=cart, changes=WorldEntityUpdate(x=5.5, y=1.0)
        )
    assert got.applied
    assert got.collided_with == [f"entity:{house}"]
    assert got.requested == (5.5, 1.0)
    assert got.resolved == pytest.approx((6.0, 1.0))
    async with uow() as u:
        stored = await service.get_entity(u, actor=gm, entity_id=cart)
    assert stored.x == pytest.approx(6.0)


@pytest.mark.parametrize(
    "changes",
    [
        {"x": math.nan},
        {"y": math.inf},
        {"width": 0.0},
        {"height": -3.0},
        {"x": 5000.0},
    ],
)
async def test_invalid_moves_are_rule_violations_and_change_nothing(
    uow: UowFactory, world: World, clock: FrozenClock, changes: dict[str, float]
) -> None:
    gm = await _gm(uow)
    eid = await _place(uow, world, gm)
    clock.advance(timedelta(seconds=1))
    async with uow() as u:
        with pytest.raises(RuleViolation):
            await service.update_entity(
                u, world, actor=gm, entity_id=eid, changes=WorldEntityUpdate(**changes)
            )
    placed = world.index.get(f"entity:{eid}")
    assert placed is not None
    assert (placed.x, placed.width) == (0.0, 10.0)


async def test_unknown_entities_are_not_found_and_blocked_moves_refused(
    uow: UowFactory, world: World, clock: FrozenClock
) -> None:
    gm = await _gm(uow)
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.update_entity(
                u, world, actor=gm, entity_id=999, changes=WorldEntityUpdate(x=1.0)
            )
    small = World(Bounds(-6, -6, 6, 6))
    await _place(uow, small, gm)
    cart = await _place(uow, small, gm, kind="cart", x=5.0, y=5.0, width=1.0, height=1.0)
    clock.advance(timedelta(seconds=1))
    async with uow() as u:
        with pytest.raises(Blocked):
            await service.update_entity(
                u, small, actor=gm, entity_id=cart, changes=WorldEntityUpdate(x=0.0, y=0.0)
            )


async def test_players_read_but_may_not_place_move_or_delete(uow: UowFactory, world: World) -> None:
    gm = await _gm(uow)
    player = await _gm(uow, "patricia", Role.PLAYER)
    eid = await _place(uow, world, gm)
    with pytest.raises(PermissionDenied):
        await _place(uow, world, player)
    async with uow() as u:
        assert (await service.get_entity(u, actor=player, entity_id=eid)).kind == "house"
        with pytest.raises(PermissionDenied):
            await service.update_entity(
                u, world, actor=player, entity_id=eid, changes=WorldEntityUpdate(x=1.0)
            )
        with pytest.raises(PermissionDenied):
            await service.delete_entity(u, world, actor=player, entity_id=eid)


async def test_rebuild_regenerates_the_index_from_entities_and_live_characters(
    uow: UowFactory, world: World
) -> None:
    gm = await _gm(uow)
    eid = await _place(uow, world, gm)
    async with uow() as u:
        a = await characters.create_character(
            u, actor=gm, data=CharacterCreate(name="A", race="elf")
        )
        b = await characters.create_character(
            u, actor=gm, data=CharacterCreate(name="B", race="elf")
        )
        far = await characters.create_character(
            u, actor=gm, data=CharacterCreate(name="Far", race="elf")
        )
    async with uow() as u:
        await characters.set_position(u, actor=gm, character_id=a.id, x=3.0, y=4.0)
        await characters.set_position(u, actor=gm, character_id=b.id, x=7.0, y=8.0)
        await characters.set_position(u, actor=gm, character_id=far.id, x=1e7, y=0.0)
    async with uow() as u:
        await characters.delete_character(u, actor=gm, character_id=b.id)
    fresh = World(world.bounds)
    async with uow() as u:
        report = await service.rebuild(u, fresh, actor=gm)
    assert sorted(e.key for e in fresh.index.snapshot()) == sorted(
        [f"entity:{eid}", f"character:{a.id}"]
    )
    assert (report.entities, report.characters) == (1, 1)
    assert list(report.skipped) == [f"character:{far.id}"]
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.sync_character(u, fresh, actor=gm, character_id=b.id)
