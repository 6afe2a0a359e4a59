"""Fixtures for the users and auth flows: an in-process AuthContext and account helpers."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tests.conftest import UowFactory
from visualdm.access.principals import SystemActor, UserActor
from visualdm.audit.models import AuditEntry
from visualdm.auth import service as auth_service
from visualdm.auth.context import AuthContext, build_auth
from visualdm.clock import FrozenClock
from visualdm.ownership import Role
from visualdm.settings import Settings
from visualdm.users import service
from visualdm.users.schemas import AccessToken, UserCreate, UserRead

CLI = SystemActor("cli")
PASSWORD = "a long enough passphrase"


@pytest.fixture
def auth(clock: FrozenClock, tmp_path: Path) -> AuthContext:
    """The embedded AuthContext (memory token store, throttle and limiter) on the test clock."""
    return build_auth(Settings(data_dir=tmp_path), clock=clock)


async def make_user(
    uow: UowFactory, name: str, roles: Sequence[Role] = (Role.PLAYER,), password: str = PASSWORD
) -> UserRead:
    """Create an account through the service, as the CLI would."""
    async with uow() as u:
        data = UserCreate(username=name, password=SecretStr(password))
        return await service.create_user(u, actor=CLI, data=data, roles=roles)


async def login(
    uow: UowFactory, auth: AuthContext, name: str, password: str = PASSWORD, ip: str = "10.0.0.1"
) -> auth_service.LoginResult:
    """Attempt a login in its own unit of work (committed, failed or not)."""
    async with uow() as u:
        return await auth_service.authenticate(
            u, auth=auth, username=name, password=password, ip=ip
        )


async def token_for(uow: UowFactory, auth: AuthContext, name: str) -> AccessToken:
    """Log in successfully and return the token."""
    return (await login(uow, auth, name)).unwrap()[1]


def as_actor(user: UserRead) -> UserActor:
    """The user as an authenticated principal."""
    return UserActor(user.id, frozenset(user.roles))


async def audit_entries(uow: UowFactory, action: str | None = None) -> list[AuditEntry]:
    """Audit entries in chain order, optionally only one action."""
    async with uow() as u:
        query = select(AuditEntry).order_by(AuditEntry.seq)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        return list((await u.session.scalars(query)).all())
