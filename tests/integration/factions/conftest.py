"""Fixtures of the faction service tests: a GM, two players, and builders for factions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.conftest import UowFactory
from tests.support.world import Cast, make_cast
from visualdm.access.principals import UserActor
from visualdm.audit.models import AuditEntry
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.factions import service
from visualdm.factions.schemas import FactionCreate


@pytest.fixture
async def cast(uow: UowFactory) -> Cast:
    """A game master and two players."""
    return await make_cast(uow)


async def make_faction(
    uow: UowFactory, actor: UserActor, name: str, parent_id: int | None = None
) -> int:
    """Create a faction in its own transaction; returns its id."""
    async with uow() as u:
        made = await service.create_faction(
            u, actor=actor, data=FactionCreate(name=name, parent_id=parent_id)
        )
    return made.id


async def make_character(uow: UowFactory, owner: UserActor, name: str = "Aria") -> int:
    """Create a character owned by `owner` in its own transaction; returns its id."""
    async with uow() as u:
        made = await characters.create_character(
            u, actor=owner, data=CharacterCreate(name=name, race="elf")
        )
    return made.id


async def audit_of(uow: UowFactory, entity: str, entity_id: object) -> list[AuditEntry]:
    """The audit entries of one entity, oldest first."""
    async with uow() as u:
        rows = await u.session.scalars(
            select(AuditEntry)
            .where(AuditEntry.entity == entity, AuditEntry.entity_id == str(entity_id))
            .order_by(AuditEntry.seq)
        )
        return list(rows.all())
