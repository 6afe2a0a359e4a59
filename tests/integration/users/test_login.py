"""Login, logout and the per-request token check, with every attempt audited (spec 6.3)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type
from sqlalchemy import update

from tests.conftest import UowFactory
from tests.integration.users.conftest import audit_entries, login, make_user, token_for
from visualdm.auth import passwords
from visualdm.auth import service as auth_service
from visualdm.auth.context import AuthContext
from visualdm.errors import NotAuthenticated, RateLimited
from visualdm.ownership import ARGON2, LOGIN_THROTTLE_ACCOUNT, Role
from visualdm.users.models import User

PASSWORD_OF = "frodo's old passphrase"


async def test_a_login_returns_a_token_that_identifies_the_user_and_roles(
    uow: UowFactory, auth: AuthContext
) -> None:
    gm = await make_user(uow, "Gandalf", roles=[Role.GM])
    user, token = (await login(uow, auth, "gandalf", ip="192.0.2.7")).unwrap()
    assert user.id == gm.id
    actor = await auth_service.principal_from_token(auth, token.access_token)
    assert actor.user_id == gm.id
    assert actor.roles == frozenset({Role.GM})
    [entry] = await audit_entries(uow, "login")
    assert entry.entity_id == str(gm.id)
    assert entry.actor_user_id == gm.id
    assert entry.changes == {"outcome": "success"}
    assert entry.personal is not None
    assert entry.personal["ip"] == "192.0.2.7"
    assert entry.personal["username"] == "Gandalf"


async def test_a_login_sets_last_seen(uow: UowFactory, auth: AuthContext) -> None:
    await make_user(uow, "frodo")
    user, _ = (await login(uow, auth, "frodo")).unwrap()
    assert user.last_seen_at is not None


@pytest.mark.parametrize(
    ("name", "password", "outcome"),
    [("frodo", "not the right password", "bad_password"), ("nobody", "whatever", "unknown_user")],
)
async def test_a_failed_login_is_refused_and_audited_with_the_ip(
    uow: UowFactory, auth: AuthContext, name: str, password: str, outcome: str
) -> None:
    frodo = await make_user(uow, "frodo")
    result = await login(uow, auth, name, password, ip="198.51.100.9")
    with pytest.raises(NotAuthenticated, match="invalid username or password"):
        result.unwrap()
    [entry] = await audit_entries(uow, "login_failed")
    assert entry.changes == {"outcome": outcome}
    assert entry.entity_id == (str(frodo.id) if outcome == "bad_password" else None)
    assert entry.actor_user_id is None
    assert entry.personal is not None
    assert entry.personal["ip"] == "198.51.100.9"
    assert entry.personal["username"] == name


async def test_an_unknown_user_costs_a_hash_verification_like_a_real_one(
    uow: UowFactory, auth: AuthContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_user(uow, "frodo")
    verified: list[str] = []
    real = passwords.verify_sync

    def spy(stored: str, password: str) -> bool:
        verified.append(stored)
        return real(stored, password)

    monkeypatch.setattr(passwords, "verify_sync", spy)
    await login(uow, auth, "nobody", "some guess")
    await login(uow, auth, "frodo", "some guess")
    assert len(verified) == 2
    assert verified[0] == passwords.dummy_hash()
    assert verified[1].startswith("$argon2id$")
    assert verified[1] != verified[0]


async def test_repeated_failures_lock_the_account_even_for_the_right_password(
    uow: UowFactory, auth: AuthContext
) -> None:
    await make_user(uow, "frodo")
    for _ in range(LOGIN_THROTTLE_ACCOUNT.max_failures):
        await login(uow, auth, "frodo", "wrong guess")
    result = await login(uow, auth, "FRODO")
    with pytest.raises(RateLimited) as refused:
        result.unwrap()
    assert refused.value.retry_after > 0
    assert [e.changes["outcome"] for e in await audit_entries(uow, "login_failed")][-1] == (
        "throttled"
    )


async def test_a_disabled_or_deleted_account_cannot_log_in(
    uow: UowFactory, auth: AuthContext
) -> None:
    await make_user(uow, "frodo")
    await make_user(uow, "samwise")
    async with uow() as u:
        await u.session.execute(
            update(User).where(User.username == "frodo").values(is_active=False)
        )
        await u.session.execute(
            update(User).where(User.username == "samwise").values(deleted_at=u.clock.now())
        )
    for name in ("frodo", "samwise"):
        with pytest.raises(NotAuthenticated, match="invalid username or password"):
            (await login(uow, auth, name)).unwrap()
    outcomes = [e.changes["outcome"] for e in await audit_entries(uow, "login_failed")]
    assert outcomes == ["inactive", "unknown_user"]


async def test_a_hash_with_old_parameters_is_upgraded_at_login(
    uow: UowFactory, auth: AuthContext
) -> None:
    frodo = await make_user(uow, "frodo")
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1, type=Type.ID)
    async with uow() as u:
        await u.session.execute(
            update(User).where(User.id == frodo.id).values(password_hash=weak.hash(PASSWORD_OF))
        )
    (await login(uow, auth, "frodo", PASSWORD_OF)).unwrap()
    async with uow() as u:
        stored = await u.session.get(User, frodo.id)
        assert stored is not None
        assert stored.password_hash is not None
    assert f"m={ARGON2.memory_kib},t={ARGON2.time_cost}" in stored.password_hash
    (await login(uow, auth, "frodo", PASSWORD_OF)).unwrap()


async def test_logout_revokes_only_that_token(uow: UowFactory, auth: AuthContext) -> None:
    await make_user(uow, "frodo")
    first = await token_for(uow, auth, "frodo")
    second = await token_for(uow, auth, "frodo")
    async with uow() as u:
        await auth_service.logout(u, auth=auth, token=first.access_token)
    with pytest.raises(NotAuthenticated):
        await auth_service.principal_from_token(auth, first.access_token)
    await auth_service.principal_from_token(auth, second.access_token)
    [entry] = await audit_entries(uow, "logout")
    assert entry.changes["jti"]


async def test_a_revoked_token_cannot_log_out_again(uow: UowFactory, auth: AuthContext) -> None:
    await make_user(uow, "frodo")
    token = await token_for(uow, auth, "frodo")
    async with uow() as u:
        await auth_service.logout(u, auth=auth, token=token.access_token)
    with pytest.raises(NotAuthenticated):
        async with uow() as u:
            await auth_service.logout(u, auth=auth, token=token.access_token)
