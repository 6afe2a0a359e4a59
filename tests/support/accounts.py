"""Accounts with passwords for API tests: created through the users service, logged in over HTTP."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from pydantic import SecretStr
from sqlalchemy import select

from visualdm.access.principals import SystemActor
from visualdm.audit.models import AuditEntry
from visualdm.ownership import Role
from visualdm.runtime import Runtime
from visualdm.users import service
from visualdm.users.schemas import UserCreate

CLI = SystemActor("cli")
PASSWORD = "correct horse battery staple"


@dataclass
class Account:
    """A user with a password and the Authorization header of one logged-in session."""

    id: int
    name: str
    headers: dict[str, str]


async def create_account(runtime: Runtime, name: str, *roles: Role) -> int:
    """Create a user with PASSWORD through the service (as the CLI does); returns its id."""
    async with runtime.uow() as u:
        data = UserCreate(username=name, password=SecretStr(PASSWORD))
        made = await service.create_user(u, actor=CLI, data=data, roles=roles or (Role.PLAYER,))
    return made.id


async def log_in(client: httpx.AsyncClient, name: str, password: str = PASSWORD) -> httpx.Response:
    """POST the credentials to /v1/auth/login."""
    return await client.post("/v1/auth/login", json={"username": name, "password": password})


async def account(client: httpx.AsyncClient, runtime: Runtime, name: str, *roles: Role) -> Account:
    """Create a user and log it in over HTTP."""
    user_id = await create_account(runtime, name, *roles)
    r = await log_in(client, name)
    assert r.status_code == 200, r.text
    return Account(user_id, name, {"Authorization": f"Bearer {r.json()['access_token']}"})


async def audit_entries(runtime: Runtime, action: str) -> list[AuditEntry]:
    """Committed audit entries of one action, in chain order."""
    async with runtime.uow() as u:
        query = select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)
        return list((await u.session.scalars(query)).all())
