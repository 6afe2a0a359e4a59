"""Queries on the users table; returns ORM objects or None and turns duplicates into Conflict."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from visualdm.db.inserts import inserted
from visualdm.errors import Conflict
from visualdm.users.models import User


async def get(session: AsyncSession, user_id: int, *, include_deleted: bool = False) -> User | None:
    """The user with `user_id`; soft-deleted users only when asked for."""
    user = await session.get(User, user_id)
    if user is None or (user.is_deleted and not include_deleted):
        return None
    return user


async def get_by_username(
    session: AsyncSession, username: str, *, include_deleted: bool = False
) -> User | None:
    """The user whose name equals `username` ignoring case (uses the lower(username) index)."""
    query = select(User).where(func.lower(User.username) == username.lower())
    if not include_deleted:
        query = query.where(User.deleted_at.is_(None))
    return (await session.scalars(query)).one_or_none()


async def username_taken(session: AsyncSession, username: str) -> bool:
    """Whether any user, even a soft-deleted one, holds `username` ignoring case."""
    found = await session.scalar(
        select(User.id).where(func.lower(User.username) == username.lower()).limit(1)
    )
    return found is not None


async def add(session: AsyncSession, user: User) -> User:
    """Insert `user` and assign its id; raises Conflict if the name is taken (any case)."""
    if not await inserted(session, user):
        # Two registrations raced past username_taken(); the unique index decided.
        raise Conflict(f"username {user.username!r} is taken", field="username")
    return user


async def flush(session: AsyncSession) -> None:
    """Write pending changes now, so errors surface inside the service call."""
    await session.flush()
