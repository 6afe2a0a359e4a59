"""Queries on the characters table; soft-deleted rows are invisible unless asked for."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, Select, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from visualdm.characters.models import Character
from visualdm.characters.schemas import CharacterFilter
from visualdm.db.text import ilike_contains
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import NotFound


async def get(
    session: AsyncSession, character_id: int, *, fresh: bool = False, lock: bool = False
) -> Character | None:
    """Return the live character, or None if missing or soft-deleted.

    `fresh` re-reads a row already in the session; `lock` also holds it until the transaction ends.
    """
    stmt = select(Character).where(Character.id == character_id, Character.deleted_at.is_(None))
    if fresh or lock:
        stmt = stmt.execution_options(populate_existing=True)
    if lock:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


_TABLE = Character.__table__
_LIVE_ROW = select(_TABLE).where(
    _TABLE.c.id == bindparam("character_id"), _TABLE.c.deleted_at.is_(None)
)


_LIVE_ROW_LOCKED = _LIVE_ROW.with_for_update()


async def read_live_row(uow: UnitOfWork, character_id: int, *, lock: bool = False) -> Row[Any]:
    """Return the live character as a Core row in the transaction (`lock`: held until it
    ends); NotFound if missing or soft-deleted."""
    found = await uow.execute(
        _LIVE_ROW_LOCKED if lock else _LIVE_ROW, {"character_id": character_id}
    )
    row = found.first()
    if row is None:
        raise NotFound("character", character_id)
    return row


async def read_live(uow: UnitOfWork, character_id: int) -> Row[Any] | None:
    """Return the live character as a plain row (no ORM object), or None; a read of one round
    trip when the unit of work has not begun (UnitOfWork.read_one)."""
    return await uow.read_one(_LIVE_ROW, {"character_id": character_id})


async def get_live(
    session: AsyncSession, character_id: int, *, fresh: bool = False, lock: bool = False
) -> Character:
    """Return the live character; NotFound if missing or soft-deleted."""
    row = await get(session, character_id, fresh=fresh, lock=lock)
    if row is None:
        raise NotFound("character", character_id)
    return row


async def get_deleted(session: AsyncSession, character_id: int) -> Character:
    """Return a soft-deleted character (for restore); NotFound otherwise."""
    row = await session.scalar(
        select(Character)
        .where(Character.id == character_id, Character.deleted_at.is_not(None))
        .execution_options(populate_existing=True)
    )
    if row is None:
        raise NotFound("character", character_id, f"no deleted character {character_id}")
    return row


def list_query(filters: CharacterFilter, *, after: int | None, limit: int) -> Select[Any]:
    """Build the keyset-paginated list query for `filters` (Core rows, no ORM objects)."""
    stmt = select(_TABLE).where(Character.deleted_at.is_(None))
    if filters.owner_id is not None:
        stmt = stmt.where(Character.owner_id == filters.owner_id)
    if filters.race is not None:
        stmt = stmt.where(Character.race == filters.race)
    if filters.name_contains:
        stmt = stmt.where(ilike_contains(Character.name, filters.name_contains))
    if filters.min_level is not None:
        stmt = stmt.where(Character.level >= filters.min_level)
    if filters.max_level is not None:
        stmt = stmt.where(Character.level <= filters.max_level)
    if after is not None:
        stmt = stmt.where(Character.id > after)
    return stmt.order_by(Character.id).limit(limit + 1)


async def list_page(
    uow: UnitOfWork, filters: CharacterFilter, *, after: int | None, limit: int
) -> tuple[Sequence[Row[Any]], bool]:
    """Return up to `limit` characters after `after` in one query, and whether more follow."""
    rows = await uow.read_all(list_query(filters, after=after, limit=limit))
    return rows[:limit], len(rows) > limit


async def live_ids(session: AsyncSession, ids: list[int]) -> set[int]:
    """Return which of `ids` are live characters."""
    if not ids:
        return set()
    found = await session.scalars(
        select(Character.id).where(Character.id.in_(ids), Character.deleted_at.is_(None))
    )
    return set(found.all())


async def owner_of_live(uow: UnitOfWork, character_id: int) -> int | None:
    """Return the owner of a live character (None for an NPC); NotFound if missing or deleted."""
    found = (
        await uow.execute(
            select(Character.owner_id).where(
                Character.id == character_id, Character.deleted_at.is_(None)
            )
        )
    ).first()
    if found is None:
        raise NotFound("character", character_id)
    owner: int | None = found.owner_id
    return owner


async def move_if_newer(
    uow: UnitOfWork, character_id: int, *, x: float, y: float, at: datetime
) -> bool:
    """Set the position only if `at` is newer than the stored one (atomic last-writer-wins)."""
    result = await uow.execute(
        update(Character)
        .where(
            Character.id == character_id,
            Character.deleted_at.is_(None),
            (Character.position_updated_at.is_(None)) | (Character.position_updated_at < at),
        )
        .values(x=x, y=y, position_updated_at=at)
        .returning(Character.id)
    )
    return result.first() is not None


async def position_of(
    uow: UnitOfWork, character_id: int
) -> tuple[float | None, float | None, datetime | None]:
    """Return the stored (x, y, position_updated_at) of a character."""
    row = (
        await uow.execute(
            select(Character.x, Character.y, Character.position_updated_at).where(
                Character.id == character_id
            )
        )
    ).one()
    return row.x, row.y, row.position_updated_at
