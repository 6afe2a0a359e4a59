"""Two API processes (two AuthContexts on separate Redis clients) share sessions and revocations."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from tests.conftest import UowFactory
from visualdm.access.principals import SystemActor, UserActor
from visualdm.auth import service as auth_service
from visualdm.auth.context import AuthContext, build_auth
from visualdm.clock import FrozenClock
from visualdm.errors import NotAuthenticated
from visualdm.ownership import Role
from visualdm.settings import Settings
from visualdm.users import service
from visualdm.users.schemas import PasswordChange, UserCreate

PASSWORD = "a long enough passphrase"
SECRET = "shared-test-secret-" + "x" * 32


def _context(redis: Redis, prefix: str, clock: FrozenClock, data_dir: Path) -> AuthContext:
    settings = Settings(
        redis_url="redis://unused", redis_prefix=prefix, jwt_secret=SECRET, data_dir=data_dir
    )
    return build_auth(settings, clock=clock, redis=redis)


async def test_a_password_change_in_one_process_ends_sessions_in_the_other(
    uow: UowFactory,
    redis_a: Redis,
    redis_b: Redis,
    prefix: str,
    clock: FrozenClock,
    tmp_path: Path,
) -> None:
    one = _context(redis_a, prefix, clock, tmp_path)
    two = _context(redis_b, prefix, clock, tmp_path)
    async with uow() as u:
        data = UserCreate(username="frodo", password=SecretStr(PASSWORD))
        user = await service.create_user(u, actor=SystemActor("cli"), data=data, roles=[Role.GM])
    async with uow() as u:
        result = await auth_service.authenticate(
            u, auth=one, username="frodo", password=PASSWORD, ip="10.0.0.1"
        )
    _, token = result.unwrap()
    assert (await auth_service.principal_from_token(two, token.access_token)).user_id == user.id
    async with uow() as u:
        await auth_service.change_password(
            u,
            auth=two,
            actor=UserActor(user.id, frozenset({Role.GM})),
            user_id=user.id,
            data=PasswordChange(
                current_password=SecretStr(PASSWORD),
                new_password=SecretStr("another long passphrase"),
            ),
        )
    with pytest.raises(NotAuthenticated):
        await auth_service.principal_from_token(one, token.access_token)
