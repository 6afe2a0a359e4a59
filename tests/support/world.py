"""Small builders for integration tests: users and actors without going through auth."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import EPOCH
from visualdm.access.principals import SystemActor, UserActor
from visualdm.ownership import Role
from visualdm.users.models import User

SYSTEM = SystemActor("tests")


async def add_user(session: AsyncSession, name: str, *roles: Role) -> UserActor:
    """Insert a user row directly and return it as an actor."""
    user = User(
        username=name,
        email=f"{name}@example.test",
        password_hash=None,
        roles=[r.value for r in roles or (Role.PLAYER,)],
        created_at=EPOCH,
        updated_at=EPOCH,
    )
    session.add(user)
    await session.flush()
    return UserActor(user.id, frozenset(roles or (Role.PLAYER,)), name)
