"""HTTP routes of the Authentication System: /v1/auth (sessions) and /v1/users (accounts)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from visualdm.api.deps import AnonymousLimit, CurrentActor, RuntimeDep, UoW, bearer_token, client_ip
from visualdm.api.limits import EntityId
from visualdm.auth import service as auth_service
from visualdm.users import export, service
from visualdm.users.schemas import (
    LoginRequest,
    PasswordChange,
    TokenResponse,
    UserCreate,
    UserExport,
    UserRead,
    UserUpdate,
)

auth_router = APIRouter(prefix="/v1/auth", tags=["auth"])
users_router = APIRouter(prefix="/v1/users", tags=["users"])


@auth_router.post("/register", status_code=status.HTTP_201_CREATED, dependencies=[AnonymousLimit])
async def register(uow: UoW, body: UserCreate, response: Response) -> UserRead:
    """Create a player account (rate-limited per client IP)."""
    made = await service.register_user(uow, data=body)
    response.headers["Location"] = f"/v1/users/{made.id}"
    return made


@auth_router.post("/login", dependencies=[AnonymousLimit])
async def login(runtime: RuntimeDep, body: LoginRequest, request: Request) -> TokenResponse:
    """Exchange credentials for a bearer token; 401 if refused, 429 while throttled or when
    the client IP has spent its request budget."""
    # This handler owns its unit of work: the attempt's audit entry commits before a failed
    # attempt is raised as an error (which would roll a request-scoped unit of work back).
    async with runtime.uow() as uow:
        result = await auth_service.authenticate(
            uow,
            auth=runtime.auth,
            username=body.username,
            password=body.password.get_secret_value(),
            ip=client_ip(request),
        )
    _user, token = result.unwrap()
    remaining = token.expires_at - runtime.clock.now()
    return TokenResponse(
        access_token=token.access_token,
        expires_in=max(0, int(remaining.total_seconds())),
        expires_at=token.expires_at,
    )


@auth_router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(uow: UoW, runtime: RuntimeDep, _actor: CurrentActor, request: Request) -> None:
    """Revoke the token this request carries; every process refuses it from now on."""
    await auth_service.logout(uow, auth=runtime.auth, token=bearer_token(request))


@auth_router.get("/me")
async def me(uow: UoW, actor: CurrentActor) -> UserRead:
    """The caller's own account."""
    return await service.get_user(uow, actor=actor, user_id=actor.user_id)


@auth_router.post("/password", status_code=status.HTTP_204_NO_CONTENT)
async def change_password(
    uow: UoW, runtime: RuntimeDep, actor: CurrentActor, body: PasswordChange
) -> None:
    """Change the caller's password (the current one is required); ends all its sessions."""
    await auth_service.change_password(
        uow, auth=runtime.auth, actor=actor, user_id=actor.user_id, data=body
    )


# /me routes come before /{user_id}: the path parameter would otherwise claim "me".
@users_router.get("/me/export")
async def export_me(uow: UoW, actor: CurrentActor) -> UserExport:
    """Everything stored about the caller: account, characters, memberships, quests, audit."""
    return await service.export_user_data(
        uow, actor=actor, user_id=actor.user_id, sections=export.sections(actor)
    )


@users_router.delete("/me", status_code=status.HTTP_204_NO_CONTENT)
async def delete_me(uow: UoW, runtime: RuntimeDep, actor: CurrentActor) -> None:
    """Soft-delete the caller's account and end its sessions."""
    await service.delete_user(uow, actor=actor, store=runtime.auth.store, user_id=actor.user_id)


@users_router.get("/{user_id}")
async def get_user(
    uow: UoW,
    actor: CurrentActor,
    user_id: EntityId,
    include_deleted: Annotated[bool, Query()] = False,
) -> UserRead:
    """Read an account (admins: any; others: their own)."""
    return await service.get_user(
        uow, actor=actor, user_id=user_id, include_deleted=include_deleted
    )


@users_router.patch("/{user_id}")
async def update_user(
    uow: UoW, runtime: RuntimeDep, actor: CurrentActor, user_id: EntityId, body: UserUpdate
) -> UserRead:
    """Change roles or activation (admins); either change revokes the user's tokens."""
    return await service.update_user(
        uow, actor=actor, store=runtime.auth.store, user_id=user_id, data=body
    )


@users_router.delete("/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_user(
    uow: UoW, runtime: RuntimeDep, actor: CurrentActor, user_id: EntityId
) -> None:
    """Soft-delete an account (admins: any; others: their own) and revoke its tokens."""
    await service.delete_user(uow, actor=actor, store=runtime.auth.store, user_id=user_id)


@users_router.post("/{user_id}/restore")
async def restore_user(uow: UoW, actor: CurrentActor, user_id: EntityId) -> UserRead:
    """Undo a soft delete (admins)."""
    return await service.restore_user(uow, actor=actor, user_id=user_id)


router = APIRouter()
router.include_router(auth_router)
router.include_router(users_router)
