"""Small builders for integration tests: users and actors without going through auth."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from tests.conftest import EPOCH
from visualdm.access.principals import SystemActor, UserActor
from visualdm.db.unit_of_work import UnitOfWork
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


@dataclass
class Cast:
    """A game master and two players, the people most service tests need."""

    gm: UserActor
    alice: UserActor
    bob: UserActor


async def make_cast(uow: Callable[[], AbstractAsyncContextManager[UnitOfWork]]) -> Cast:
    """Insert the cast's users in one unit of work."""
    async with uow() as u:
        return Cast(
            gm=await add_user(u.session, "gamemaster", Role.GM),
            alice=await add_user(u.session, "alice", Role.PLAYER),
            bob=await add_user(u.session, "bob", Role.PLAYER),
        )
