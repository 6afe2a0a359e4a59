"""Character writes meeting in the database: each on its own connection, all at once.

On PostgreSQL these really race (row locks, re-checked versions); on SQLite they queue behind
the write lock. Either way nothing is lost, doubled or answered with a driver error.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from tests.conftest import UowFactory
from tests.support.world import Cast, make_cast
from visualdm.characters import service
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import FrozenClock
from visualdm.errors import NotFound, VersionConflict

RACERS = 6


@pytest.fixture
async def cast(uow: UowFactory) -> Cast:
    return await make_cast(uow)


async def _character(uow: UowFactory, cast: Cast) -> int:
    async with uow() as u:
        made = await service.create_character(
            u, actor=cast.gm, data=CharacterCreate(name="Contested", race="elf")
        )
    return made.id


async def test_simultaneous_reward_grants_all_count(uow: UowFactory, cast: Cast) -> None:
    cid = await _character(uow, cast)

    async def grant(n: int) -> None:
        async with uow() as u:
            if n % 2:
                await service.grant_xp(u, actor=cast.gm, character_id=cid, amount=10)
            else:
                await service.grant_rewards(
                    u, actor=cast.gm, character_id=cid, gold=3, items=[f"gem{n}"]
                )

    await asyncio.gather(*(grant(n) for n in range(RACERS)))
    async with uow() as u:
        after = await service.get_character(u, actor=cast.gm, character_id=cid)
    assert after.xp == 10 * (RACERS // 2)
    assert after.gold == 3 * (RACERS // 2)
    assert sorted(after.inventory) == sorted(f"gem{n}" for n in range(0, RACERS, 2))
    assert after.version == 1 + RACERS  # every grant stored exactly once


async def test_simultaneous_moves_leave_the_newest_position(
    uow: UowFactory, cast: Cast, clock: FrozenClock
) -> None:
    cid = await _character(uow, cast)
    stamps = [clock.now() - timedelta(seconds=RACERS - n) for n in range(RACERS)]

    async def move(n: int) -> bool:
        async with uow() as u:
            result = await service.set_position(
                u, actor=cast.gm, character_id=cid, x=float(n), y=float(-n), at=stamps[n]
            )
        return result.applied

    # The newest report goes first: every older one that follows must be refused.
    applied = await asyncio.gather(*(move(n) for n in reversed(range(RACERS))))
    async with uow() as u:
        after = await service.get_character(u, actor=cast.gm, character_id=cid)
    assert after.position is not None
    assert (after.position.x, after.position.y) == (RACERS - 1.0, 1.0 - RACERS)
    assert after.position.updated_at == stamps[-1]
    assert applied[0] is True


async def test_simultaneous_restores_restore_once(uow: UowFactory, cast: Cast) -> None:
    cid = await _character(uow, cast)
    async with uow() as u:
        await service.delete_character(u, actor=cast.gm, character_id=cid)

    async def restore() -> str:
        try:
            async with uow() as u:
                await service.restore_character(u, actor=cast.gm, character_id=cid)
        except NotFound:
            return "gone"
        except VersionConflict:
            return "conflict"
        return "restored"

    outcomes = await asyncio.gather(*(restore() for _ in range(RACERS)))
    assert outcomes.count("restored") == 1, outcomes
    assert set(outcomes) <= {"restored", "gone", "conflict"}
    async with uow() as u:
        after = await service.get_character(u, actor=cast.gm, character_id=cid)
    assert after.version == 3  # created, deleted, restored: once each
