"""Optimistic locking (spec 5.2): retry a read-modify-write on version conflicts, then fail."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import VersionConflict
from visualdm.ownership import MAX_WRITE_ATTEMPTS

T = TypeVar("T")


async def retry_on_conflict(
    uow: UnitOfWork,
    model: type[object],
    entity: str,
    entity_id: int,
    attempt: Callable[[bool], Awaitable[T]],
) -> T:
    """Run `attempt` in a savepoint, re-running it on a stale version up to the registry's limit.

    `attempt(lock)` must re-read the row (populate_existing) so each try starts from the newest
    committed version. The first try is purely optimistic; a retry is told to lock the row it
    reads (SELECT ... FOR UPDATE) so that under heavy contention it waits for the current writer
    instead of losing the race again. The version check still guards every write. After the last
    failed try, raises VersionConflict with the stored version.
    """
    for number in range(MAX_WRITE_ATTEMPTS):
        try:
            async with uow.session.begin_nested():
                return await attempt(number > 0)
        except StaleDataError:
            continue
    current = await uow.session.scalar(
        select(model.version).where(model.id == entity_id)  # type: ignore[attr-defined]
    )
    raise VersionConflict(entity, entity_id, current_version=current, attempts=MAX_WRITE_ATTEMPTS)


async def flush_versioned(
    uow: UnitOfWork, model: type[object], entity: str, entity_id: int
) -> None:
    """Flush a single (non-retried) update; a stale version becomes VersionConflict."""
    try:
        async with uow.session.begin_nested():
            await uow.session.flush()
    except StaleDataError:
        current = await uow.session.scalar(
            select(model.version).where(model.id == entity_id)  # type: ignore[attr-defined]
        )
        raise VersionConflict(entity, entity_id, current_version=current) from None
