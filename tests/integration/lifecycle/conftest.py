"""Lifecycle suite fixtures: a small world (a GM, a player, a hero in a faction on a quest)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import func, select

from tests.conftest import UowFactory
from tests.support.world import add_user
from visualdm.access.principals import UserActor
from visualdm.audit.models import AuditEntry
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.factions import service as factions
from visualdm.factions.schemas import FactionCreate
from visualdm.ownership import Role
from visualdm.quests import service as quests
from visualdm.quests.schemas import QuestCreate


@dataclass
class World:
    gm: UserActor
    player: UserActor
    hero: int
    faction: int
    quest: int


async def build_world(uow: UowFactory, tag: str = "") -> World:
    """A GM and a player; the player's hero belongs to a faction and holds a quest."""
    async with uow() as u:
        gm = await add_user(u.session, f"gamemaster{tag}", Role.GM)
        player = await add_user(u.session, f"player{tag}", Role.PLAYER)
    async with uow() as u:
        hero = await characters.create_character(
            u, actor=player, data=CharacterCreate(name=f"Hero{tag}", race="elf")
        )
        faction = await factions.create_faction(u, actor=gm, data=FactionCreate(name=f"Guild{tag}"))
        quest = await quests.create_quest(
            u, actor=gm, data=QuestCreate(title=f"Wolves{tag}", status="available")
        )
    async with uow() as u:
        await factions.join_faction(u, actor=gm, faction_id=faction.id, character_id=hero.id)
        await quests.assign_quest(u, actor=gm, quest_id=quest.id, character_id=hero.id)
    return World(gm, player, hero.id, faction.id, quest.id)


@pytest.fixture
async def world(uow: UowFactory) -> World:
    """The small world of build_world."""
    return await build_world(uow)


async def count(uow: UowFactory, model: type[object], *where: object) -> int:
    """Rows of `model` matching `where` (read as the login role)."""
    async with uow() as u:
        found = await u.session.scalar(
            select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        )
    return int(found or 0)


async def audit_actions(uow: UowFactory, action: str) -> list[AuditEntry]:
    """Audit entries with `action`, oldest first."""
    async with uow() as u:
        rows = await u.session.scalars(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        )
        return list(rows.all())
