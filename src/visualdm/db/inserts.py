"""Insert a row where a constraint may refuse it (a racer's duplicate, a vanished reference)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession


async def inserted(session: AsyncSession, row: Any) -> bool:
    """Add and flush `row` in a savepoint; False if a constraint refused it.

    The savepoint keeps the transaction usable after the violation, so the caller can answer
    with its own domain error (or carry on) instead of meeting a "pending rollback" error at its
    next statement.
    """
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        return False
    return True
