"""FastAPI dependencies as Annotated aliases, defined once: runtime, unit of work, actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request

from visualdm.access.principals import UserActor
from visualdm.api.limits import RATE_LIMIT_STATE
from visualdm.auth.ratelimit import RateLimitState, rate_limit_key
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import NotAuthenticated, RateLimited
from visualdm.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    """The process runtime built by the app's lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    """The runtime, as a dependency (async: FastAPI runs a plain `def` one on a worker thread)."""
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def get_uow(runtime: RuntimeDep) -> AsyncIterator[UnitOfWork]:
    """One unit of work per request, committed before the response is sent."""
    async with runtime.uow() as uow:
        yield uow


# scope="function": the commit happens when the handler returns, before the response goes out,
# so a failed commit becomes an error response instead of a success that never happened.
UoW = Annotated[UnitOfWork, Depends(get_uow, scope="function")]


def client_ip(request: Request) -> str | None:
    """The peer address (proxies are not trusted)."""
    return request.client.host if request.client else None


def bearer_token(request: Request) -> str:
    """The bearer token of the request; NotAuthenticated if absent or malformed."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise NotAuthenticated("a bearer token is required")
    return token.strip()


def _spent(request: Request, state: RateLimitState) -> None:
    """Note the budget for the RateLimit-* headers; RateLimited (429) when it is exhausted."""
    setattr(request.state, RATE_LIMIT_STATE, state)
    if not state.allowed:
        raise RateLimited(
            "rate limit exceeded", retry_after=state.reset_after, limit=state.limit, remaining=0
        )


async def current_actor(request: Request) -> UserActor:
    """The authenticated user, after the revocation check and the per-user rate limit.

    Roles come from the token: any role change, deactivation or deletion revokes the user's
    tokens, so stale roles die with them. Both checks are one gate call (one Redis round trip).
    """
    runtime = runtime_of(request)
    try:
        claims = runtime.auth.codec.decode(bearer_token(request))
        state = await runtime.auth.gate.admit(claims)
    except NotAuthenticated:
        # A request without a good token is anonymous: it spends its IP's budget, so guessing
        # tokens is limited like any other unauthenticated traffic (429 once it is spent).
        await anonymous_limit(request, runtime)
        raise
    _spent(request, state)
    return UserActor(claims.user_id, claims.roles)


async def anonymous_limit(request: Request, runtime: RuntimeDep) -> None:
    """Rate-limit an unauthenticated request by client IP; RateLimited (429) when exhausted."""
    key = rate_limit_key(user_id=None, ip=client_ip(request))
    _spent(request, await runtime.auth.limiter.check(key))


CurrentActor = Annotated[UserActor, Depends(current_actor)]
AnonymousLimit = Depends(anonymous_limit)
