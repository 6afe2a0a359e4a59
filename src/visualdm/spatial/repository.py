"""Reads and writes of world_entities, and the position columns of characters (spec 6.1)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from visualdm.characters.models import Character
from visualdm.errors import NotFound
from visualdm.ownership import SPATIAL_REBUILD_BATCH
from visualdm.spatial.models import WorldEntity

ENTITY = "world_entity"


async def get(session: AsyncSession, entity_id: int, *, fresh: bool = False) -> WorldEntity:
    """Return the row; NotFound if there is none."""
    stmt = select(WorldEntity).where(WorldEntity.id == entity_id)
    if fresh:
        stmt = stmt.execution_options(populate_existing=True)
    row = await session.scalar(stmt)
    if row is None:
        raise NotFound(ENTITY, entity_id)
    return row


async def all_entities(session: AsyncSession) -> Sequence[WorldEntity]:
    """Every world entity, by id."""
    return (await session.scalars(select(WorldEntity).order_by(WorldEntity.id))).all()


EntityRow = tuple[int, str, float, float, float, float, bool, datetime]


async def entity_rows(session: AsyncSession) -> AsyncIterator[Sequence[EntityRow]]:
    """Every world entity's (id, kind, x, y, width, height, is_solid, position_updated_at), by id.

    One query, streamed in batches of plain rows, never ORM objects: what a rebuild reads. On
    PostgreSQL the rows come straight from asyncpg's cursor, in the unit of work's transaction
    (so under its module role); per-row result processing cost more than the query itself.
    """
    e = WorldEntity
    stmt = select(e.id, e.kind, e.x, e.y, e.width, e.height, e.is_solid, e.position_updated_at)
    stmt = stmt.order_by(e.id)
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        raw = (await connection.get_raw_connection()).driver_connection
        assert raw is not None
        cursor = await raw.cursor(str(stmt.compile(dialect=connection.dialect)))
        while rows := await cursor.fetch(SPATIAL_REBUILD_BATCH):
            yield rows
        return
    result = await session.stream(stmt.execution_options(yield_per=SPATIAL_REBUILD_BATCH))
    async for part in result.partitions():
        yield part


async def update_if_newer(
    session: AsyncSession, entity_id: int, *, at: datetime, values: dict[str, Any]
) -> bool:
    """Apply `values` only if `at` is newer than the stored position (atomic last-writer-wins)."""
    result = await session.execute(
        update(WorldEntity)
        .where(WorldEntity.id == entity_id, WorldEntity.position_updated_at < at)
        .values(**values, position_updated_at=at)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def delete_row(session: AsyncSession, entity_id: int) -> None:
    """Delete the row at once (spec 2.4: immediate deletion)."""
    await session.execute(delete(WorldEntity).where(WorldEntity.id == entity_id))


PositionRow = tuple[int, float | None, float | None, datetime | None]


async def live_character(session: AsyncSession, character_id: int) -> PositionRow:
    """A live character's id and position columns (all the Spatial System may read)."""
    row = (
        await session.execute(
            select(Character.id, Character.x, Character.y, Character.position_updated_at).where(
                Character.id == character_id, Character.deleted_at.is_(None)
            )
        )
    ).first()
    if row is None:
        raise NotFound("character", character_id)
    return (row[0], row[1], row[2], row[3])


async def character_positions(session: AsyncSession) -> list[PositionRow]:
    """Id and position of every live character that has one."""
    stmt = (
        select(Character.id, Character.x, Character.y, Character.position_updated_at)
        .where(
            Character.deleted_at.is_(None),
            Character.x.is_not(None),
            Character.y.is_not(None),
            Character.position_updated_at.is_not(None),
        )
        .order_by(Character.id)
    )
    return [(r[0], r[1], r[2], r[3]) for r in (await session.execute(stmt)).all()]
