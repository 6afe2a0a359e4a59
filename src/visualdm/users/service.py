"""Account management: create, read, update, delete, restore and export users.

Every function runs as the Authentication System and authorizes the actor first. Changes that
must end a user's sessions (roles, deactivation, deletion) revoke the user's tokens twice: before
commit, so a Redis failure aborts the change instead of leaving live tokens (fail closed), and
after commit, so a login racing the change cannot keep a token minted from the old state.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from sqlalchemy import or_, select

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor, SystemActor, UserActor
from visualdm.audit import service as audit
from visualdm.audit.models import AuditEntry
from visualdm.auth import passwords
from visualdm.auth.token_store import TokenStore
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import Conflict, NotFound, RuleViolation
from visualdm.ownership import LAST_SEEN_RESOLUTION, Action, Module, Resource, Role
from visualdm.users import repository
from visualdm.users.models import User
from visualdm.users.schemas import AuditRecord, UserCreate, UserExport, UserRead, UserUpdate

ENTITY = "user"
REGISTRATION = SystemActor("registration")

ExportSection = Callable[[UnitOfWork, int], Awaitable[tuple[str, list[dict[str, Any]]]]]
"""Another domain's contribution to a data export: (section name, rows about the user)."""


def _is_self(actor: Actor, user_id: int) -> bool:
    return isinstance(actor, UserActor) and actor.user_id == user_id


def _state(user: User) -> dict[str, Any]:
    """The audited (non-personal) fields of a user."""
    return {"roles": sorted(user.roles), "is_active": user.is_active}


async def revoke_sessions(uow: UnitOfWork, store: TokenStore, user_id: int) -> None:
    """End every session of `user_id` now and again after commit (see the module docstring)."""
    await store.revoke_user(user_id)

    async def _again() -> None:
        await store.revoke_user(user_id)

    uow.after_commit(_again)


async def _load(uow: UnitOfWork, user_id: int, *, include_deleted: bool = False) -> User:
    user = await repository.get(uow.session, user_id, include_deleted=include_deleted)
    if user is None:
        raise NotFound(ENTITY, user_id)
    return user


async def register_user(uow: UnitOfWork, *, data: UserCreate) -> UserRead:
    """Self-registration: create a player account; raises Conflict, RuleViolation."""
    return await _create(uow, actor=REGISTRATION, data=data, roles=[Role.PLAYER], action="register")


async def create_user(
    uow: UnitOfWork, *, actor: Actor, data: UserCreate, roles: Sequence[Role]
) -> UserRead:
    """Create an account with any roles (admins, the CLI); raises PermissionDenied, Conflict."""
    if not roles:
        raise RuleViolation("a user needs at least one role", field="roles")
    return await _create(uow, actor=actor, data=data, roles=roles, action="create")


async def _create(
    uow: UnitOfWork, *, actor: Actor, data: UserCreate, roles: Sequence[Role], action: str
) -> UserRead:
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.CREATE)
        password = data.password.get_secret_value()
        passwords.check_policy(password, username=data.username)
        if await repository.username_taken(uow.session, data.username):
            raise Conflict(f"username {data.username!r} is taken", field="username")
        now = uow.clock.now()
        user = User(
            username=data.username,
            email=data.email,
            password_hash=await passwords.hash_password(password),
            roles=sorted({Role(r).value for r in roles}),
            is_active=True,
            created_at=now,
            updated_at=now,
        )
        await repository.add(uow.session, user)
        audit.record(
            uow,
            actor=actor,
            action=action,
            entity=ENTITY,
            entity_id=user.id,
            changes=audit.diff({}, {**_state(user), "password_hash": user.password_hash}),
            personal={"username": user.username, "email": user.email},
        )
        return UserRead.model_validate(user)


async def get_user(
    uow: UnitOfWork, *, actor: Actor, user_id: int, include_deleted: bool = False
) -> UserRead:
    """Read an account (own, or any for admins); others' reads are audited (spec 6.3).

    Raises PermissionDenied, NotFound.
    """
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.READ, owner_id=user_id)
        user = await _load(uow, user_id, include_deleted=include_deleted)
        audit.record_sensitive_read(
            uow, actor=actor, resource=Resource.AUTH_DATA, action="read", entity=ENTITY,
            entity_id=user_id, subject_user_id=user_id,
        )  # fmt: skip
        return UserRead.model_validate(user)


async def update_user(
    uow: UnitOfWork, *, actor: Actor, store: TokenStore, user_id: int, data: UserUpdate
) -> UserRead:
    """Change roles or activation (admins); either change ends the user's sessions.

    Raises PermissionDenied, NotFound, RuleViolation (an admin demoting or disabling itself).
    """
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.UPDATE)
        user = await _load(uow, user_id)
        if _is_self(actor, user_id) and (
            data.is_active is False or (data.roles is not None and Role.ADMIN not in data.roles)
        ):
            # Would lock the acting admin out mid-request; another admin must do it.
            raise RuleViolation("admins cannot demote or deactivate themselves")
        before = _state(user)
        if data.roles is not None:
            user.roles = sorted({r.value for r in data.roles})
        if data.is_active is not None:
            user.is_active = data.is_active
        changes = audit.diff(before, _state(user))
        if not changes:
            return UserRead.model_validate(user)
        user.updated_at = uow.clock.now()
        await repository.flush(uow.session)
        audit.record(
            uow, actor=actor, action="update", entity=ENTITY, entity_id=user_id, changes=changes
        )
        await revoke_sessions(uow, store, user_id)
        return UserRead.model_validate(user)


async def delete_user(uow: UnitOfWork, *, actor: Actor, store: TokenStore, user_id: int) -> None:
    """Soft-delete an account (own, or any for admins) and end its sessions.

    Kept for the registry's retention, then purged. Raises PermissionDenied, NotFound.
    """
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.DELETE, owner_id=user_id)
        user = await _load(uow, user_id)
        now = uow.clock.now()
        user.deleted_at = now
        user.updated_at = now
        await repository.flush(uow.session)
        audit.record(
            uow,
            actor=actor,
            action="delete",
            entity=ENTITY,
            entity_id=user_id,
            changes={"deleted_at": {"old": None, "new": now}, "record": _state(user)},
            personal={"username": user.username},
        )
        await revoke_sessions(uow, store, user_id)


async def restore_user(uow: UnitOfWork, *, actor: Actor, user_id: int) -> UserRead:
    """Undo a soft delete (admins); raises PermissionDenied, NotFound, Conflict if not deleted."""
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.UPDATE)
        user = await _load(uow, user_id, include_deleted=True)
        if user.deleted_at is None:
            raise Conflict(f"user {user_id} is not deleted")
        before = user.deleted_at
        user.deleted_at = None
        user.updated_at = uow.clock.now()
        await repository.flush(uow.session)
        audit.record(
            uow,
            actor=actor,
            action="restore",
            entity=ENTITY,
            entity_id=user_id,
            changes={"deleted_at": {"old": before, "new": None}},
        )
        return UserRead.model_validate(user)


async def touch_last_seen(uow: UnitOfWork, *, actor: Actor, user_id: int) -> bool:
    """Record activity (at most once per LAST_SEEN_RESOLUTION); returns whether it wrote.

    Not audited: it is activity bookkeeping for the inactivity policy, and logins (which also
    set it) are audited already. Raises PermissionDenied, NotFound.
    """
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.UPDATE, owner_id=user_id)
        user = await _load(uow, user_id)
        now = uow.clock.now()
        if user.last_seen_at is not None and now - user.last_seen_at < LAST_SEEN_RESOLUTION:
            return False
        user.last_seen_at = now
        await repository.flush(uow.session)
        return True


async def export_user_data(
    uow: UnitOfWork, *, actor: Actor, user_id: int, sections: Sequence[ExportSection] = ()
) -> UserExport:
    """Everything stored about a user: the account, audit entries, and `sections`.

    `sections` is the seam for other domains (characters, memberships, quest assignments): each
    is that domain's own export service, called with this unit of work. Raises PermissionDenied,
    NotFound.
    """
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.READ, owner_id=user_id)
        user = await _load(uow, user_id, include_deleted=True)
        account = UserRead.model_validate(user)
    # Module roles may only append to the audit log (INSERT-only on PostgreSQL), so its entries
    # are read by the unit of work's own connection role, outside the module block.
    entries = await _audit_about(uow, user_id)
    extra: dict[str, list[dict[str, Any]]] = {}
    for section in sections:
        name, rows = await section(uow, user_id)
        extra[name] = rows
    async with uow.acting_as(Module.AUTHENTICATION):
        audit.record_sensitive_read(
            uow, actor=actor, resource=Resource.AUTH_DATA, action="export", entity=ENTITY,
            entity_id=user_id, subject_user_id=user_id,
        )  # fmt: skip
    return UserExport(account=account, audit=entries, sections=extra)


async def _audit_about(uow: UnitOfWork, user_id: int) -> list[AuditRecord]:
    """Audit entries the user made or that concern the user's account, oldest first."""
    rows = await uow.session.scalars(
        select(AuditEntry)
        .where(
            or_(
                AuditEntry.actor_user_id == user_id,
                (AuditEntry.entity == ENTITY) & (AuditEntry.entity_id == str(user_id)),
            )
        )
        .order_by(AuditEntry.seq)
    )
    records = []
    for row in rows:
        record = AuditRecord.model_validate(row)
        if record.personal is not None:
            record.personal = {k: v for k, v in record.personal.items() if not k.startswith("_")}
        records.append(record)
    return records
