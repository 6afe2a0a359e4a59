"""AuthContext: what authentication needs at run time, built once by the composition root."""

from __future__ import annotations

from dataclasses import dataclass, replace

from redis.asyncio import Redis

from visualdm.auth.gate import LocalGate, RedisGate, RequestGate
from visualdm.auth.ratelimit import ApiRateLimiter
from visualdm.auth.throttle import LoginThrottle, MemoryLoginThrottle, RedisLoginThrottle
from visualdm.auth.token_store import MemoryTokenStore, RedisTokenStore, TokenStore
from visualdm.auth.tokens import TokenCodec, load_secret
from visualdm.clock import Clock
from visualdm.settings import Settings


@dataclass(frozen=True)
class AuthContext:
    """The token codec, token store, login throttle, API limiter, request gate and clock."""

    codec: TokenCodec
    store: TokenStore
    throttle: LoginThrottle
    limiter: ApiRateLimiter
    gate: RequestGate
    clock: Clock

    def with_limiter(self, limiter: ApiRateLimiter) -> AuthContext:
        """This context with another API limiter, which its gate counts with too."""
        return replace(self, limiter=limiter, gate=self.gate.with_limiter(limiter))


def build_auth(settings: Settings, *, clock: Clock, redis: Redis | None = None) -> AuthContext:
    """Build the Redis flavour when a client is given, else the in-process one.

    Raises InsecureConfiguration without a usable secret in production, and ValueError when
    Redis is configured but no client was passed (processes would not share revocations).
    """
    codec = TokenCodec(load_secret(settings), clock=clock)
    if redis is None:
        if settings.redis_url is not None:
            raise ValueError("VDM_REDIS_URL is set: pass its client to build_auth()")
        store = MemoryTokenStore(clock)
        limiter = ApiRateLimiter.in_memory()
        return AuthContext(
            codec=codec,
            store=store,
            throttle=MemoryLoginThrottle(clock),
            limiter=limiter,
            gate=LocalGate(store, limiter),
            clock=clock,
        )
    prefix = settings.redis_prefix
    shared_store = RedisTokenStore(redis, prefix=prefix, clock=clock)
    shared_limiter = ApiRateLimiter.on_redis(redis, prefix=prefix)
    return AuthContext(
        codec=codec,
        store=shared_store,
        throttle=RedisLoginThrottle(redis, prefix=prefix),
        limiter=shared_limiter,
        gate=RedisGate(redis, shared_store, shared_limiter),
        clock=clock,
    )
