"""Queries on quests and character_quests; soft-deleted quests are invisible unless asked for."""

from __future__ import annotations

from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from visualdm.db.idset import IdSet
from visualdm.db.inserts import inserted
from visualdm.db.text import ilike_contains
from visualdm.errors import Conflict, NotFound
from visualdm.quests.models import CharacterQuest, Quest
from visualdm.quests.schemas import QuestFilter

# Assignments that hold one of a quest's max_assignees slots; failed or abandoned ones free it.
SLOT_HOLDING = ("assigned", "in_progress", "completed")


async def get(
    session: AsyncSession, quest_id: int, *, fresh: bool = False, lock: bool = False
) -> Quest | None:
    """Return the live quest, or None; `lock` takes its row lock (serializes slot counting)."""
    stmt = select(Quest).where(Quest.id == quest_id, Quest.deleted_at.is_(None))
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def get_live(
    session: AsyncSession, quest_id: int, *, fresh: bool = False, lock: bool = False
) -> Quest:
    """Return the live quest; NotFound if missing or soft-deleted."""
    row = await get(session, quest_id, fresh=fresh, lock=lock)
    if row is None:
        raise NotFound("quest", quest_id)
    return row


async def get_deleted(session: AsyncSession, quest_id: int) -> Quest:
    """Return a soft-deleted quest (for restore); NotFound otherwise."""
    row = await session.scalar(
        select(Quest)
        .where(Quest.id == quest_id, Quest.deleted_at.is_not(None))
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound("quest", quest_id, f"no deleted quest {quest_id}")
    return row


def list_query(
    filters: QuestFilter, *, after: int | None, limit: int, include_drafts: bool
) -> Select[Quest]:
    """Build the keyset-paginated list query for `filters`."""
    stmt = select(Quest).where(Quest.deleted_at.is_(None))
    if not include_drafts:
        stmt = stmt.where(Quest.status != "draft")
    if filters.status is not None:
        stmt = stmt.where(Quest.status == filters.status)
    if filters.title_contains:
        stmt = stmt.where(ilike_contains(Quest.title, filters.title_contains))
    if after is not None:
        stmt = stmt.where(Quest.id > after)
    return stmt.order_by(Quest.id).limit(limit + 1)


async def list_page(
    session: AsyncSession,
    filters: QuestFilter,
    *,
    after: int | None,
    limit: int,
    include_drafts: bool,
) -> tuple[list[Quest], bool]:
    """Return up to `limit` quests after `after`, and whether more follow."""
    stmt = list_query(filters, after=after, limit=limit, include_drafts=include_drafts)
    rows = list((await session.scalars(stmt)).all())
    return rows[:limit], len(rows) > limit


async def get_assignment(
    session: AsyncSession, quest_id: int, character_id: int, *, fresh: bool = False
) -> CharacterQuest | None:
    """Return the assignment of `quest_id` to `character_id`, or None."""
    stmt = select(CharacterQuest).where(
        CharacterQuest.quest_id == quest_id, CharacterQuest.character_id == character_id
    )
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    return await session.scalar(stmt)


async def get_assignment_live(
    session: AsyncSession, quest_id: int, character_id: int, *, fresh: bool = False
) -> CharacterQuest:
    """Return the assignment; NotFound if the character does not have this quest."""
    row = await get_assignment(session, quest_id, character_id, fresh=fresh)
    if row is None:
        raise NotFound(
            "quest_assignment",
            f"{quest_id}/{character_id}",
            f"character {character_id} does not have quest {quest_id}",
        )
    return row


async def add_assignment(session: AsyncSession, row: CharacterQuest) -> None:
    """Insert an assignment; Conflict if the pair exists (a racer got there first)."""
    if not await inserted(session, row):
        raise Conflict(
            f"character {row.character_id} already has quest {row.quest_id}",
            quest_id=row.quest_id,
            character_id=row.character_id,
        )


async def slots_taken(session: AsyncSession, quest_id: int) -> int:
    """Count the assignments of `quest_id` that hold a slot."""
    taken = await session.scalar(
        select(func.count())
        .select_from(CharacterQuest)
        .where(CharacterQuest.quest_id == quest_id, CharacterQuest.status.in_(SLOT_HOLDING))
    )
    return int(taken or 0)


async def assignments_of_quest(session: AsyncSession, quest_id: int) -> list[CharacterQuest]:
    """Return every assignment of `quest_id`, oldest first."""
    rows = await session.scalars(
        select(CharacterQuest)
        .where(CharacterQuest.quest_id == quest_id)
        .order_by(CharacterQuest.id)
    )
    return list(rows.all())


async def assignments_of_characters(
    session: AsyncSession, characters: IdSet
) -> list[CharacterQuest]:
    """Return the assignments of `characters` to live quests, by character, oldest first."""
    rows = await session.scalars(
        select(CharacterQuest)
        .join(Quest, Quest.id == CharacterQuest.quest_id)
        .where(characters.match(CharacterQuest.character_id), Quest.deleted_at.is_(None))
        .order_by(CharacterQuest.character_id, CharacterQuest.id)
    )
    return list(rows.all())


async def assigned_character_ids(session: AsyncSession, quest_id: int) -> list[int]:
    """Return the ids of the characters that have `quest_id`."""
    rows = await session.scalars(
        select(CharacterQuest.character_id).where(CharacterQuest.quest_id == quest_id)
    )
    return list(rows.all())
