"""The API rate limit (spec 3.4: 100 requests per minute per user), via the `limits` library.

A moving window per key: the user id when authenticated, else the client IP. With Redis the
budget is shared by every API process; a check here costs two Redis calls (hit, then window
stats), which is why authenticated requests go through the gate (gate.py), one script doing
both checks with the same storage layout.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from visualdm.ownership import API_RATE_LIMIT, IntegrationBoundary


@dataclass(frozen=True, slots=True)
class RateLimitState:
    """The outcome of one check: what the API needs for 429, Retry-After and RateLimit-*."""

    allowed: bool
    limit: int
    remaining: int
    reset_after: int
    """Seconds until a request is allowed again (until the oldest counted request leaves)."""


def rate_limit_key(*, user_id: int | None, ip: str | None) -> str:
    """The budget a request spends: its user's, or its IP's when anonymous."""
    if user_id is not None:
        return f"user:{user_id}"
    return f"ip:{ip or 'unknown'}"


class ApiRateLimiter:
    """Counts requests per key against the registry's API boundary limit."""

    def __init__(
        self,
        storage: Storage,
        boundary: IntegrationBoundary = API_RATE_LIMIT,
        *,
        key_prefix: str | None = None,
    ) -> None:
        if boundary.requests_per_window is None or boundary.window is None:
            raise ValueError(f"{boundary.name} has no rate limit")
        self._item = RateLimitItemPerSecond(
            boundary.requests_per_window, int(boundary.window.total_seconds())
        )
        self._storage = storage
        self._key_prefix = key_prefix
        self._limiter = MovingWindowRateLimiter(storage)

    @classmethod
    def in_memory(cls) -> ApiRateLimiter:
        """A limiter for one process (embedded mode)."""
        return cls(MemoryStorage())

    @classmethod
    def on_redis(
        cls, redis: Redis, *, prefix: str, boundary: IntegrationBoundary = API_RATE_LIMIT
    ) -> ApiRateLimiter:
        """A limiter sharing its counts through Redis, on the given client's connection pool."""
        key_prefix = f"{prefix}:ratelimit"
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=key_prefix,
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]  # typed too narrowly
        )
        return cls(storage, boundary, key_prefix=key_prefix)

    @property
    def limit(self) -> int:
        """Requests allowed per window."""
        return int(self._item.amount)

    @property
    def shared(self) -> bool:
        """Whether the counts live in Redis (shared by every process) rather than here."""
        return self._key_prefix is not None

    @property
    def window_seconds(self) -> int:
        """Length of the moving window."""
        return int(self._item.get_expiry())

    def storage_key(self, key: str) -> str:
        """The Redis key under which `limits` keeps `key`'s window (Redis limiters only)."""
        if self._key_prefix is None:
            raise ValueError("an in-process limiter has no storage key")
        return f"{self._key_prefix}:{self._item.key_for(key)}"

    def state(
        self, *, allowed: bool, remaining: int, reset_time: float, now: float
    ) -> RateLimitState:
        """The outcome of a hit, from the window's remaining budget and reset time (epoch s)."""
        reset_after = max(0, math.ceil(reset_time - now))
        if not allowed:
            reset_after = max(1, reset_after)
        return RateLimitState(
            allowed=allowed, limit=self.limit, remaining=max(0, remaining), reset_after=reset_after
        )

    async def check(self, key: str) -> RateLimitState:
        """Spend one request of `key`'s budget if any is left, and report the budget."""
        allowed = await self._limiter.hit(self._item, key)
        stats = await self._limiter.get_window_stats(self._item, key)
        # `limits` keeps time with time.time(), so its reset time is compared with the same.
        return self.state(
            allowed=allowed, remaining=stats.remaining, reset_time=stats.reset_time, now=time.time()
        )

    async def reset(self, key: str) -> None:
        """Forget `key`'s counted requests (an admin unblocking a user; tests)."""
        await self._limiter.clear(self._item, key)
