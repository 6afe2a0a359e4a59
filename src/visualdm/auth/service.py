"""Authentication flows: login, logout, password change, and the per-request token check.

Every login attempt is audited with the IP and the user id or attempted name (spec 6.3), so a
failed attempt must still commit: authenticate() reports failure in its result, and the caller
raises it (LoginResult.unwrap) after the unit of work has committed the audit entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor, SystemActor, UserActor
from visualdm.audit import service as audit
from visualdm.auth import passwords
from visualdm.auth.context import AuthContext
from visualdm.auth.tokens import TokenClaims
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import NotAuthenticated, NotFound, PermissionDenied, RateLimited
from visualdm.ownership import Action, Module, Resource, Role
from visualdm.storable import storable_text
from visualdm.users import repository
from visualdm.users.schemas import AccessToken, PasswordChange, UserRead
from visualdm.users.service import ENTITY, revoke_sessions

AUTHENTICATION = SystemActor("authentication")
_BAD_LOGIN = "invalid username or password"


@dataclass(frozen=True)
class LoginResult:
    """The outcome of a login attempt: a user and token, or the error to raise after commit."""

    user: UserRead | None = None
    token: AccessToken | None = None
    error: NotAuthenticated | RateLimited | None = None

    def unwrap(self) -> tuple[UserRead, AccessToken]:
        """Return (user, token); raises NotAuthenticated or RateLimited for a failed attempt."""
        if self.error is not None:
            raise self.error
        if self.user is None or self.token is None:
            raise RuntimeError("a LoginResult holds either an error or a user and token")
        return self.user, self.token


def _attempt(
    uow: UnitOfWork, *, actor: Actor, user_id: int | None, outcome: str, name: str, ip: str | None
) -> None:
    audit.record(
        uow,
        actor=actor,
        action="login" if outcome == "success" else "login_failed",
        entity=ENTITY,
        entity_id=user_id,
        changes={"outcome": outcome},
        personal={"username": storable_text(name), "ip": ip},
    )


async def authenticate(
    uow: UnitOfWork, *, auth: AuthContext, username: str, password: str, ip: str | None
) -> LoginResult:
    """Check credentials and issue a token; every attempt is audited. Commit, then unwrap().

    Unknown, deleted and disabled accounts cost the same hash verification as real ones and get
    the same answer, so neither timing nor message reveals which names exist.
    """
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(AUTHENTICATION, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.UPDATE)
        try:
            await auth.throttle.check(username=username, ip=ip)
        except RateLimited as exc:
            _attempt(
                uow, actor=AUTHENTICATION, user_id=None, outcome="throttled", name=username, ip=ip
            )
            return LoginResult(error=exc)
        # No account's name holds NUL (the databases cannot store it): such a name is an
        # unknown user, looked up nowhere, and costs and answers like any other.
        user = (
            None if "\x00" in username else await repository.get_by_username(uow.session, username)
        )
        matches = await passwords.verify_password(user.password_hash if user else None, password)
        if user is None or not matches or not user.is_active:
            if not matches:
                await auth.throttle.failed(username=username, ip=ip)
            outcome = (
                "unknown_user" if user is None else "bad_password" if not matches else "inactive"
            )
            user_id = None if user is None else user.id
            _attempt(
                uow, actor=AUTHENTICATION, user_id=user_id, outcome=outcome, name=username, ip=ip
            )
            return LoginResult(error=NotAuthenticated(_BAD_LOGIN))
        now = uow.clock.now()
        if user.password_hash is not None and passwords.needs_rehash(user.password_hash):
            # The registry's Argon2 parameters changed since this hash was made.
            user.password_hash = await passwords.hash_password(password)
            user.updated_at = now
        user.last_seen_at = now
        await repository.flush(uow.session)
        roles = frozenset(Role(r) for r in user.roles)
        token, claims = auth.codec.issue(user.id, roles)
        # Recorded before commit: if the commit fails the token is never handed out, and expires.
        await auth.store.record(claims.jti, user.id, claims.expires_at)
        await auth.throttle.succeeded(username=username, ip=ip)
        actor = UserActor(user.id, roles)
        _attempt(uow, actor=actor, user_id=user.id, outcome="success", name=user.username, ip=ip)
        return LoginResult(
            user=UserRead.model_validate(user),
            token=AccessToken(access_token=token, expires_at=claims.expires_at),
        )


async def principal_from_token(auth: AuthContext, token: str) -> UserActor:
    """The user a bearer token speaks for; one token-store lookup, no database query.

    Roles come from the token: any role change, deactivation or deletion revokes the user's
    tokens, so stale roles die with them. Raises NotAuthenticated.
    """
    claims = await _verified(auth, token)
    return UserActor(claims.user_id, claims.roles)


async def _verified(auth: AuthContext, token: str) -> TokenClaims:
    claims = auth.codec.decode(token)
    if not await auth.store.is_active(claims.jti, claims.user_id):
        raise NotAuthenticated("invalid or expired token")
    return claims


async def logout(uow: UnitOfWork, *, auth: AuthContext, token: str) -> None:
    """Revoke this token at once (nothing else depends on the commit); raises NotAuthenticated."""
    claims = await _verified(auth, token)
    actor = UserActor(claims.user_id, claims.roles)
    await auth.store.revoke(claims.jti)
    async with uow.acting_as(Module.AUTHENTICATION):
        audit.record(
            uow,
            actor=actor,
            action="logout",
            entity=ENTITY,
            entity_id=actor.user_id,
            changes={"jti": claims.jti},
        )


async def change_password(
    uow: UnitOfWork, *, auth: AuthContext, actor: Actor, user_id: int, data: PasswordChange
) -> None:
    """Set a new password and end every session of the user (they log in again).

    Users changing their own must give the current one (wrong: PermissionDenied, throttled like
    a login); admins and the CLI may reset others'. Raises PermissionDenied, NotFound,
    RuleViolation (password policy), RateLimited.
    """
    async with uow.acting_as(Module.AUTHENTICATION):
        authorize(actor, Module.AUTHENTICATION, Resource.AUTH_DATA, Action.UPDATE, owner_id=user_id)
        user = await repository.get(uow.session, user_id)
        if user is None:
            raise NotFound(ENTITY, user_id)
        if isinstance(actor, UserActor) and actor.user_id == user_id:
            await auth.throttle.check(username=user.username, ip=None)
            current = data.current_password.get_secret_value() if data.current_password else ""
            if not await passwords.verify_password(user.password_hash, current):
                await auth.throttle.failed(username=user.username, ip=None)
                # 403, not 401: the token is fine, so clients must not treat this as a logout.
                raise PermissionDenied("the current password is wrong")
        new = data.new_password.get_secret_value()
        passwords.check_policy(new, username=user.username)
        old_hash = user.password_hash
        user.password_hash = await passwords.hash_password(new)
        user.updated_at = uow.clock.now()
        await repository.flush(uow.session)
        audit.record(
            uow,
            actor=actor,
            action="password_change",
            entity=ENTITY,
            entity_id=user_id,
            changes=audit.diff({"password_hash": old_hash}, {"password_hash": user.password_hash}),
        )
        await revoke_sessions(uow, auth.store, user_id)
