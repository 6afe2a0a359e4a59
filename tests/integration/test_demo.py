"""The demo world: a believable campaign created through the services, and only into an empty db."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import UowFactory
from visualdm import demo
from visualdm.audit import seal
from visualdm.characters.models import Character
from visualdm.errors import Conflict
from visualdm.factions.models import CharacterFaction, Faction, FactionRelation
from visualdm.quests.models import Quest


async def test_seed_fills_an_empty_world_and_refuses_a_second_time(uow: UowFactory) -> None:
    async with uow() as u:
        report = await demo.seed(u)
    async with uow() as u:
        characters = await u.session.scalar(select(func.count()).select_from(Character))
        parents = (await u.session.scalars(select(Faction.parent_id))).all()
        relations = await u.session.scalar(select(func.count()).select_from(FactionRelation))
        members = await u.session.scalar(select(func.count()).select_from(CharacterFaction))
        statuses = set((await u.session.scalars(select(Quest.status))).all())
        sealed = await seal.seal_batch(u)
    async with uow() as u:
        chain = await seal.verify(u.session)
    assert characters is not None
    assert characters >= 20
    assert any(p is not None for p in parents)
    assert relations == 2
    assert members is not None
    assert members >= 5
    assert statuses == {"draft", "available", "active", "completed", "failed"}
    assert report.accounts.keys() >= {"gamemaster"}
    assert chain.ok
    assert chain.checked == sealed > 0
    assert chain.checked > characters
    with pytest.raises(Conflict):
        async with uow() as u:
            await demo.seed(u)
