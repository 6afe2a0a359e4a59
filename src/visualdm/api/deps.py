"""FastAPI dependencies as Annotated aliases, defined once: runtime, unit of work, actor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request, Response

from visualdm.access.principals import UserActor
from visualdm.auth.ratelimit import RateLimitState, rate_limit_key
from visualdm.auth.service import principal_from_token
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import NotAuthenticated, RateLimited
from visualdm.runtime import Runtime


def get_runtime(request: Request) -> Runtime:
    """The process runtime built by the app's lifespan."""
    runtime: Runtime = request.app.state.runtime
    return runtime


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


def _rate_headers(response: Response, state: RateLimitState) -> None:
    response.headers["RateLimit-Limit"] = str(state.limit)
    response.headers["RateLimit-Remaining"] = str(state.remaining)
    response.headers["RateLimit-Reset"] = str(state.reset_after)


async def spend(runtime: Runtime, response: Response, key: str) -> None:
    """Spend one request of `key`'s budget; RateLimited (429) when it is exhausted."""
    state = await runtime.auth.limiter.check(key)
    _rate_headers(response, state)
    if not state.allowed:
        raise RateLimited(
            "rate limit exceeded", retry_after=state.reset_after, limit=state.limit, remaining=0
        )


async def current_actor(request: Request, response: Response, runtime: RuntimeDep) -> UserActor:
    """The authenticated user, after the revocation check and the per-user rate limit."""
    actor = await principal_from_token(runtime.auth, bearer_token(request))
    await spend(runtime, response, rate_limit_key(user_id=actor.user_id, ip=None))
    return actor


async def anonymous_limit(request: Request, response: Response, runtime: RuntimeDep) -> None:
    """Rate-limit an unauthenticated request by client IP."""
    await spend(runtime, response, rate_limit_key(user_id=None, ip=client_ip(request)))


CurrentActor = Annotated[UserActor, Depends(current_actor)]
AnonymousLimit = Depends(anonymous_limit)
