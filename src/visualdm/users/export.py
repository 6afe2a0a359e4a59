"""The other domains' sections of a user's data export: characters, memberships, quests.

Composes each owner's own read services (users/service.py names no other domain); the HTTP API
and the CLI pass `sections(actor)` to users.service.export_user_data.
"""

from __future__ import annotations

from typing import Any

from visualdm.access.principals import Actor
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterFilter, CharacterRead
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.factions import service as factions
from visualdm.ownership import PAGE_SIZE_MAX
from visualdm.quests import service as quests
from visualdm.users.service import ExportSection


async def _characters_of(uow: UnitOfWork, actor: Actor, user_id: int) -> list[CharacterRead]:
    """Every live character `user_id` owns, following the pages to the end."""
    found: list[CharacterRead] = []
    cursor: str | None = None
    while True:
        page = await characters.list_characters(
            uow,
            actor=actor,
            filters=CharacterFilter(owner_id=user_id),
            cursor=cursor,
            limit=PAGE_SIZE_MAX,
        )
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            return found


def sections(actor: Actor) -> list[ExportSection]:
    """The export sections read on behalf of `actor` (who must be allowed to read them)."""
    owned: dict[int, list[CharacterRead]] = {}

    async def mine(uow: UnitOfWork, user_id: int) -> list[CharacterRead]:
        if user_id not in owned:
            owned[user_id] = await _characters_of(uow, actor, user_id)
        return owned[user_id]

    async def character_rows(uow: UnitOfWork, user_id: int) -> tuple[str, list[dict[str, Any]]]:
        return "characters", [c.model_dump(mode="json") for c in await mine(uow, user_id)]

    async def membership_rows(uow: UnitOfWork, user_id: int) -> tuple[str, list[dict[str, Any]]]:
        ids = [c.id for c in await mine(uow, user_id)]
        got = await factions.memberships_of_characters(uow, actor=actor, character_ids=ids)
        return "faction_memberships", [m.model_dump(mode="json") for m in got]

    async def assignment_rows(uow: UnitOfWork, user_id: int) -> tuple[str, list[dict[str, Any]]]:
        ids = [c.id for c in await mine(uow, user_id)]
        got = await quests.assignments_of_characters(uow, actor=actor, character_ids=ids)
        return "quest_assignments", [a.model_dump(mode="json") for a in got]

    return [character_rows, membership_rows, assignment_rows]
