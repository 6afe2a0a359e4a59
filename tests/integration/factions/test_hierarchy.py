"""The faction hierarchy never forms a cycle, even under concurrent re-parenting."""

from __future__ import annotations

import asyncio

import pytest

from tests.conftest import UowFactory
from tests.integration.factions.conftest import Cast, audit_of, make_faction
from visualdm.errors import RuleViolation
from visualdm.factions import service
from visualdm.factions.schemas import FactionUpdate


async def _reparent(uow: UowFactory, cast: Cast, faction_id: int, parent_id: int | None) -> None:
    async with uow() as u:
        await service.update_faction(
            u, actor=cast.gm, faction_id=faction_id, changes=FactionUpdate(parent_id=parent_id)
        )


async def _parent_of(uow: UowFactory, cast: Cast, faction_id: int) -> int | None:
    async with uow() as u:
        return (await service.get_faction(u, actor=cast.gm, faction_id=faction_id)).parent_id


async def test_a_faction_cannot_be_its_own_parent(uow: UowFactory, cast: Cast) -> None:
    a = await make_faction(uow, cast.gm, "A")
    with pytest.raises(RuleViolation, match="its own parent"):
        await _reparent(uow, cast, a, a)
    assert await _parent_of(uow, cast, a) is None


async def test_a_two_faction_cycle_is_refused(uow: UowFactory, cast: Cast) -> None:
    a = await make_faction(uow, cast.gm, "A")
    b = await make_faction(uow, cast.gm, "B", parent_id=a)
    with pytest.raises(RuleViolation, match="cycle"):
        await _reparent(uow, cast, a, b)
    assert await _parent_of(uow, cast, a) is None
    assert [e.action for e in await audit_of(uow, "faction", a)] == ["create"]


async def test_a_deep_cycle_is_refused_and_a_sideways_move_is_allowed(
    uow: UowFactory, cast: Cast
) -> None:
    chain = [await make_faction(uow, cast.gm, "L0")]
    for depth in range(1, 6):
        chain.append(await make_faction(uow, cast.gm, f"L{depth}", parent_id=chain[-1]))
    with pytest.raises(RuleViolation, match="cycle"):
        await _reparent(uow, cast, chain[0], chain[-1])
    # Moving a subtree under an unrelated branch is fine.
    other = await make_faction(uow, cast.gm, "Other")
    await _reparent(uow, cast, chain[3], other)
    async with uow() as u:
        up = await service.ancestors(u, actor=cast.gm, faction_id=chain[5])
    assert [f.id for f in up] == [chain[4], chain[3], other]


async def test_reparenting_to_a_descendant_is_refused_even_through_a_deleted_one(
    uow: UowFactory, cast: Cast
) -> None:
    top = await make_faction(uow, cast.gm, "Top")
    mid = await make_faction(uow, cast.gm, "Mid", parent_id=top)
    low = await make_faction(uow, cast.gm, "Low", parent_id=mid)
    async with uow() as u:
        await service.delete_faction(u, actor=cast.gm, faction_id=mid)
    # Restoring Mid would close the loop, so the deleted link still counts.
    with pytest.raises(RuleViolation, match="cycle"):
        await _reparent(uow, cast, top, low)
    assert await _parent_of(uow, cast, top) is None


async def test_ancestors_and_children_read_the_live_tree(uow: UowFactory, cast: Cast) -> None:
    root = await make_faction(uow, cast.gm, "Root")
    kids = [await make_faction(uow, cast.gm, f"Kid {i}", parent_id=root) for i in range(3)]
    grandkid = await make_faction(uow, cast.gm, "Grandkid", parent_id=kids[1])
    async with uow() as u:
        await service.delete_faction(u, actor=cast.gm, faction_id=kids[2])
    async with uow() as u:
        below = await service.children(u, actor=cast.alice, faction_id=root)
        above = await service.ancestors(u, actor=cast.alice, faction_id=grandkid)
    assert [f.id for f in below] == kids[:2]
    assert [f.id for f in above] == [kids[1], root]
    await _reparent(uow, cast, grandkid, None)
    assert await _parent_of(uow, cast, grandkid) is None


async def test_concurrent_opposite_reparentings_cannot_together_form_a_cycle(
    uow: UowFactory, cast: Cast
) -> None:
    a = await make_faction(uow, cast.gm, "A")
    b = await make_faction(uow, cast.gm, "B")
    async with uow() as first:
        await service.update_faction(
            first, actor=cast.gm, faction_id=a, changes=FactionUpdate(parent_id=b)
        )
        second = asyncio.create_task(_reparent(uow, cast, b, a))
        await asyncio.sleep(0.5)
        # The second writer waits for the first (tree lock on PostgreSQL, write lock on SQLite).
        assert not second.done()
    with pytest.raises(RuleViolation, match="cycle"):
        await second
    assert await _parent_of(uow, cast, a) == b
    assert await _parent_of(uow, cast, b) is None
