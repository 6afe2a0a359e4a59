"""Fixtures of the quest suites: a game master, two players, and builders for quests and heroes."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import UowFactory
from tests.support.world import Cast, make_cast
from visualdm.access.principals import UserActor
from visualdm.audit.models import AuditEntry
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.quests import service
from visualdm.quests.schemas import QuestCreate


@pytest.fixture
async def cast(uow: UowFactory) -> Cast:
    """A game master and two players."""
    return await make_cast(uow)


async def make_quest(uow: UowFactory, actor: UserActor, title: str = "Wolves", **kw: object) -> int:
    """Create a quest (available unless said otherwise) and return its id."""
    kw.setdefault("status", "available")
    async with uow() as u:
        made = await service.create_quest(
            u,
            actor=actor,
            data=QuestCreate.model_validate({"title": title, **kw}),
        )
    return made.id


async def make_hero(uow: UowFactory, owner: UserActor, name: str = "Aria", level: int = 1) -> int:
    """Create a character owned by `owner` and return its id."""
    async with uow() as u:
        made = await characters.create_character(
            u, actor=owner, data=CharacterCreate(name=name, race="elf", level=level)
        )
    return made.id


async def audit_of(uow: UowFactory, entity: str, entity_id: int) -> list[AuditEntry]:
    """The audit entries of one entity, oldest first."""
    async with uow() as u:
        rows = await u.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.seq)
        )
        return list(rows.all())
