"""Optimistic locking (spec 5.2) as one statement: `UPDATE … WHERE id AND version RETURNING`.

A stale version is an UPDATE that matched no row, not a driver error: the transaction stays
usable, so a race always ends as VersionConflict (or a retry), never as a failed flush.
The ORM object the caller read is kept in step with what was stored, without a flush.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

from sqlalchemy import Table, select, update
from sqlalchemy.orm.attributes import set_committed_value

from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import NotFound, VersionConflict
from visualdm.ownership import MAX_WRITE_ATTEMPTS

T = TypeVar("T")


async def store_row(
    uow: UnitOfWork, table: Any, entity_id: int, version: int, values: Mapping[str, Any]
) -> int | None:
    """Store `values` on row `entity_id` of `table` if it is still at `version`; returns the new
    version, or None if the row moved on (or is gone)."""
    stmt = (
        update(table)
        .where(table.c.id == entity_id, table.c.version == version)
        .values(**values, version=version + 1)
        .returning(table.c.version)
    )
    new_version: int | None = (await uow.execute(stmt)).scalar_one_or_none()
    return new_version


async def update_versioned(uow: UnitOfWork, row: Any, values: Mapping[str, Any]) -> bool:
    """Store `values` on `row` if its version is still the stored one; False if it moved on.

    On success the version is bumped and `row` carries the new values as its committed state.
    """
    new_version = await store_row(uow, type(row).__table__, row.id, row.version, values)
    if new_version is None:
        return False
    for key, value in values.items():
        set_committed_value(row, key, value)
    set_committed_value(row, "version", new_version)
    return True


async def stale(uow: UnitOfWork, model: type[Any], entity: str, entity_id: int) -> Exception:
    """The error for a write that lost its race: NotFound if the row is gone, else the conflict."""
    table: Table = model.__table__
    current = (
        await uow.execute(select(table.c.version).where(table.c.id == entity_id))
    ).scalar_one_or_none()
    if current is None:
        return NotFound(entity, entity_id)
    return VersionConflict(entity, entity_id, current_version=current)


async def write_versioned(
    uow: UnitOfWork, row: Any, values: Mapping[str, Any], *, entity: str
) -> None:
    """Store `values` on `row` once; VersionConflict (or NotFound) if a racer got there first."""
    if not await update_versioned(uow, row, values):
        raise await stale(uow, type(row), entity, row.id)


async def retry_on_conflict(
    uow: UnitOfWork,
    model: type[Any],
    entity: str,
    entity_id: int,
    attempt: Callable[[bool], Awaitable[T | None]],
) -> T:
    """Run a read-modify-write until it stores, at most the registry's number of times.

    `attempt(lock)` re-reads the row, applies its change with `update_versioned` and returns
    None when that found the version stale. The first try is optimistic; later ones lock the row
    they read (SELECT … FOR UPDATE), so under contention they wait for the current writer
    instead of losing again. Raises VersionConflict after the last stale try.
    """
    for number in range(MAX_WRITE_ATTEMPTS):
        result = await attempt(number > 0)
        if result is not None:
            return result
    error = await stale(uow, model, entity, entity_id)
    if isinstance(error, VersionConflict):
        raise VersionConflict(
            entity, entity_id, current_version=error.current_version, attempts=MAX_WRITE_ATTEMPTS
        )
    raise error
