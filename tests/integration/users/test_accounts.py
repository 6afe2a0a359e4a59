"""Account services: registration, unique names, changes that end sessions, deletion, audit."""

from __future__ import annotations

import pytest
from pydantic import SecretStr
from sqlalchemy import select

from tests.conftest import EPOCH, UowFactory
from tests.integration.users.conftest import (
    CLI,
    PASSWORD,
    as_actor,
    audit_entries,
    login,
    make_user,
    token_for,
)
from visualdm.auth import service as auth_service
from visualdm.auth.context import AuthContext
from visualdm.errors import (
    Conflict,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
    RuleViolation,
)
from visualdm.ownership import LOGIN_THROTTLE_ACCOUNT, Role
from visualdm.users import repository, service
from visualdm.users.models import User
from visualdm.users.schemas import PasswordChange, UserCreate, UserUpdate

NEW_PASSWORD = "an entirely new passphrase"


async def test_registration_creates_a_player_and_audits_without_the_hash(uow: UowFactory) -> None:
    async with uow() as u:
        data = UserCreate(username="Pippin", password=SecretStr(PASSWORD), email="p@shire.me")
        user = await service.register_user(u, data=data)
    assert user.roles == [Role.PLAYER]
    [entry] = await audit_entries(uow, "register")
    assert entry.entity_id == str(user.id)
    assert entry.changes["password_hash"] == {"old": "[redacted]", "new": "[redacted]"}
    assert entry.personal is not None
    assert entry.personal["username"] == "Pippin"
    assert "$argon2" not in str(entry.changes)


async def test_registration_enforces_the_password_policy(uow: UowFactory) -> None:
    data = UserCreate(username="pippin", password=SecretStr("pippin-took-1234"))
    with pytest.raises(RuleViolation, match="username"):
        async with uow() as u:
            await service.register_user(u, data=data)


@pytest.mark.parametrize("second", ["merry", "MERRY", "Merry"])
async def test_usernames_are_unique_regardless_of_case(uow: UowFactory, second: str) -> None:
    await make_user(uow, "Merry")
    with pytest.raises(Conflict, match="taken"):
        await make_user(uow, second)


async def test_the_unique_index_turns_a_racing_insert_into_conflict(uow: UowFactory) -> None:
    await make_user(uow, "Merry")
    # Skips the service's pre-check, as a registration racing the first one would.
    with pytest.raises(Conflict, match="taken"):
        async with uow() as u:
            await repository.add(
                u.session, User(username="mERRY", roles=[], created_at=EPOCH, updated_at=EPOCH)
            )


async def test_a_player_cannot_change_roles_or_read_others(
    uow: UowFactory, auth: AuthContext
) -> None:
    frodo = await make_user(uow, "frodo")
    sam = await make_user(uow, "samwise")
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.update_user(
                u,
                actor=as_actor(frodo),
                store=auth.store,
                user_id=frodo.id,
                data=UserUpdate(roles=[Role.ADMIN]),
            )
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.get_user(u, actor=as_actor(frodo), user_id=sam.id)


async def test_an_admin_reading_another_account_is_audited_but_a_self_read_is_not(
    uow: UowFactory,
) -> None:
    admin = await make_user(uow, "elrond", roles=[Role.ADMIN])
    frodo = await make_user(uow, "frodo")
    async with uow() as u:
        assert (await service.get_user(u, actor=as_actor(frodo), user_id=frodo.id)).id == frodo.id
    assert await audit_entries(uow, "read") == []
    async with uow() as u:
        await service.get_user(u, actor=as_actor(admin), user_id=frodo.id)
    [entry] = await audit_entries(uow, "read")
    assert entry.actor_user_id == admin.id
    assert entry.entity_id == str(frodo.id)


async def test_changing_the_password_ends_every_session(uow: UowFactory, auth: AuthContext) -> None:
    frodo = await make_user(uow, "frodo")
    tokens = [await token_for(uow, auth, "frodo") for _ in range(2)]
    async with uow() as u:
        await auth_service.change_password(
            u,
            auth=auth,
            actor=as_actor(frodo),
            user_id=frodo.id,
            data=PasswordChange(
                current_password=SecretStr(PASSWORD), new_password=SecretStr(NEW_PASSWORD)
            ),
        )
    for token in tokens:
        with pytest.raises(NotAuthenticated):
            await auth_service.principal_from_token(auth, token.access_token)
    with pytest.raises(NotAuthenticated):
        (await login(uow, auth, "frodo")).unwrap()
    (await login(uow, auth, "frodo", NEW_PASSWORD)).unwrap()
    [entry] = await audit_entries(uow, "password_change")
    assert entry.changes == {"password_hash": {"old": "[redacted]", "new": "[redacted]"}}


async def test_changing_ones_own_password_needs_the_current_one(
    uow: UowFactory, auth: AuthContext
) -> None:
    frodo = await make_user(uow, "frodo")
    token = await token_for(uow, auth, "frodo")
    with pytest.raises(PermissionDenied, match="current password"):
        async with uow() as u:
            await auth_service.change_password(
                u,
                auth=auth,
                actor=as_actor(frodo),
                user_id=frodo.id,
                data=PasswordChange(
                    current_password=SecretStr("a wrong guess!"),
                    new_password=SecretStr(NEW_PASSWORD),
                ),
            )
    await auth_service.principal_from_token(auth, token.access_token)
    (await login(uow, auth, "frodo")).unwrap()


async def test_a_role_change_ends_sessions_and_the_next_token_has_the_new_roles(
    uow: UowFactory, auth: AuthContext
) -> None:
    admin = await make_user(uow, "elrond", roles=[Role.ADMIN])
    frodo = await make_user(uow, "frodo")
    old = await token_for(uow, auth, "frodo")
    async with uow() as u:
        updated = await service.update_user(
            u,
            actor=as_actor(admin),
            store=auth.store,
            user_id=frodo.id,
            data=UserUpdate(roles=[Role.GM]),
        )
    assert updated.roles == [Role.GM]
    with pytest.raises(NotAuthenticated):
        await auth_service.principal_from_token(auth, old.access_token)
    new = await token_for(uow, auth, "frodo")
    assert (await auth_service.principal_from_token(auth, new.access_token)).roles == {Role.GM}
    [entry] = await audit_entries(uow, "update")
    assert entry.changes == {"roles": {"old": ["player"], "new": ["gm"]}}


async def test_deactivation_ends_sessions_and_blocks_login(
    uow: UowFactory, auth: AuthContext
) -> None:
    admin = await make_user(uow, "elrond", roles=[Role.ADMIN])
    frodo = await make_user(uow, "frodo")
    token = await token_for(uow, auth, "frodo")
    async with uow() as u:
        await service.update_user(
            u,
            actor=as_actor(admin),
            store=auth.store,
            user_id=frodo.id,
            data=UserUpdate(is_active=False),
        )
    with pytest.raises(NotAuthenticated):
        await auth_service.principal_from_token(auth, token.access_token)
    with pytest.raises(NotAuthenticated):
        (await login(uow, auth, "frodo")).unwrap()


async def test_an_admin_cannot_demote_itself(uow: UowFactory, auth: AuthContext) -> None:
    admin = await make_user(uow, "elrond", roles=[Role.ADMIN])
    with pytest.raises(RuleViolation):
        async with uow() as u:
            await service.update_user(
                u,
                actor=as_actor(admin),
                store=auth.store,
                user_id=admin.id,
                data=UserUpdate(roles=[Role.GM]),
            )


async def test_a_failing_token_store_aborts_the_change_instead_of_leaving_live_tokens(
    uow: UowFactory, auth: AuthContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = await make_user(uow, "elrond", roles=[Role.ADMIN])
    frodo = await make_user(uow, "frodo")

    async def down(user_id: int) -> int:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(auth.store, "revoke_user", down)
    with pytest.raises(ConnectionError):
        async with uow() as u:
            await service.update_user(
                u,
                actor=as_actor(admin),
                store=auth.store,
                user_id=frodo.id,
                data=UserUpdate(is_active=False),
            )
    async with uow() as u:
        assert (await service.get_user(u, actor=CLI, user_id=frodo.id)).is_active


async def test_deleting_ends_sessions_hides_the_account_and_restore_brings_it_back(
    uow: UowFactory, auth: AuthContext
) -> None:
    admin = await make_user(uow, "elrond", roles=[Role.ADMIN])
    frodo = await make_user(uow, "frodo")
    token = await token_for(uow, auth, "frodo")
    async with uow() as u:
        await service.delete_user(u, actor=as_actor(frodo), store=auth.store, user_id=frodo.id)
    with pytest.raises(NotAuthenticated):
        await auth_service.principal_from_token(auth, token.access_token)
    with pytest.raises(NotFound):
        async with uow() as u:
            await service.get_user(u, actor=as_actor(admin), user_id=frodo.id)
    with pytest.raises(NotAuthenticated):
        (await login(uow, auth, "frodo")).unwrap()
    async with uow() as u:
        restored = await service.restore_user(u, actor=as_actor(admin), user_id=frodo.id)
    assert restored.deleted_at is None
    (await login(uow, auth, "frodo")).unwrap()
    [deleted] = await audit_entries(uow, "delete")
    assert deleted.actor_user_id == frodo.id
    assert deleted.changes["record"] == {"roles": ["player"], "is_active": True}


async def test_a_player_cannot_delete_someone_else(uow: UowFactory, auth: AuthContext) -> None:
    frodo = await make_user(uow, "frodo")
    sam = await make_user(uow, "samwise")
    with pytest.raises(PermissionDenied):
        async with uow() as u:
            await service.delete_user(u, actor=as_actor(frodo), store=auth.store, user_id=sam.id)


async def test_last_seen_is_written_at_most_once_per_resolution(uow: UowFactory) -> None:
    frodo = await make_user(uow, "frodo")
    async with uow() as u:
        assert await service.touch_last_seen(u, actor=as_actor(frodo), user_id=frodo.id)
    async with uow() as u:
        assert not await service.touch_last_seen(u, actor=as_actor(frodo), user_id=frodo.id)


async def test_an_export_holds_the_account_and_its_audit_trail(
    uow: UowFactory, auth: AuthContext
) -> None:
    admin = await make_user(uow, "elrond", roles=[Role.ADMIN])
    frodo = await make_user(uow, "frodo")
    await login(uow, auth, "frodo", ip="203.0.113.5")

    async def characters(_u: object, user_id: int) -> tuple[str, list[dict[str, object]]]:
        return "characters", [{"owner_id": user_id}]

    async with uow() as u:
        export = await service.export_user_data(
            u, actor=as_actor(admin), user_id=frodo.id, sections=[characters]
        )
    assert export.account.username == "frodo"
    assert [e.action for e in export.audit] == ["create", "login"]
    assert export.audit[1].personal == {"username": "frodo", "ip": "203.0.113.5"}
    assert export.sections == {"characters": [{"owner_id": frodo.id}]}
    [entry] = await audit_entries(uow, "export")
    assert entry.actor_user_id == admin.id
    async with uow() as u:
        rows = (await u.session.scalars(select(User.id))).all()
    assert sorted(rows) == sorted([admin.id, frodo.id])


async def test_guessing_the_current_password_is_throttled_like_a_login(
    uow: UowFactory, auth: AuthContext
) -> None:
    frodo = await make_user(uow, "frodo")
    guess = PasswordChange(
        current_password=SecretStr("a wrong guess!"), new_password=SecretStr(NEW_PASSWORD)
    )
    for _ in range(LOGIN_THROTTLE_ACCOUNT.max_failures):
        with pytest.raises(PermissionDenied):
            async with uow() as u:
                await auth_service.change_password(
                    u, auth=auth, actor=as_actor(frodo), user_id=frodo.id, data=guess
                )
    with pytest.raises(RateLimited):
        async with uow() as u:
            await auth_service.change_password(
                u, auth=auth, actor=as_actor(frodo), user_id=frodo.id, data=guess
            )
