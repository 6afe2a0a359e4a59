"""An API under test: the app around a runtime on the test database, and users with tokens."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from visualdm.access.principals import UserActor
from visualdm.app import create_app
from visualdm.clock import Clock
from visualdm.db.engine import Database
from visualdm.ownership import Role
from visualdm.runtime import Runtime, build_runtime
from visualdm.settings import Settings
from visualdm.users.models import User


@dataclass
class ApiUser:
    """A user of the API: its actor and the Authorization header of a live token."""

    actor: UserActor
    headers: dict[str, str]

    @property
    def id(self) -> int:
        """The user's id."""
        return self.actor.user_id


@asynccontextmanager
async def api_client(
    database: Database, clock: Clock, settings: Settings | None = None
) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime, FastAPI]]:
    """An httpx client talking to the app in-process, on `database`."""
    settings = settings or Settings(jwt_secret="test-secret-" + "x" * 40)
    runtime = build_runtime(settings, clock=clock, db=database)
    app = create_app(runtime=runtime)
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client, runtime, app
    finally:
        if runtime.cache is not None:
            await runtime.cache.close()


async def make_user(runtime: Runtime, name: str, *roles: Role) -> ApiUser:
    """Insert a user and issue a live token for it."""
    roles = roles or (Role.PLAYER,)
    now = runtime.clock.now()
    async with runtime.uow() as u:
        user = User(
            username=name,
            email=f"{name}@example.test",
            roles=[r.value for r in roles],
            created_at=now,
            updated_at=now,
        )
        u.session.add(user)
        await u.session.flush()
        user_id = user.id
    token, claims = runtime.auth.codec.issue(user_id, frozenset(roles))
    await runtime.auth.store.record(claims.jti, user_id, claims.expires_at)
    return ApiUser(UserActor(user_id, frozenset(roles), name), {"Authorization": f"Bearer {token}"})
