"""The request gate: is this token still good, and may its user spend one more request?

Every authenticated request asks both questions. With Redis they are answered together by one
Lua script, so the revocation check and the shared per-user rate limit cost a single round
trip (issue 6: at most one pipelined Redis round trip per request), and requests arriving
together share that round trip. The script keeps the
`limits` library's moving-window layout (the same key, a list of timestamps, newest first, cut
to the limit), so `limits` still reads, counts and clears what the gate writes, and the gate
counts what `limits` wrote. Embedded, the gate asks the in-process token store and limiter.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis

from visualdm.auth.ratelimit import ApiRateLimiter, RateLimitState, rate_limit_key
from visualdm.auth.token_store import RedisTokenStore, TokenStore
from visualdm.auth.tokens import TokenClaims
from visualdm.coalesce import Coalescer
from visualdm.errors import NotAuthenticated
from visualdm.ownership import AUTH_GATE_MAX_BATCH

# Admits a batch of requests.  ARGV: now (s), limit, window (s), then one user id per request;
# KEYS: per request, its jti record and its user's moving-window list.  Returns four numbers per
# request: active (0 for a revoked or unknown token, which spends nothing: a dead token must not
# burn its former owner's budget), allowed, entries in the window, the oldest entry's time.
# The hit is `limits`' acquire_moving_window; the stats its moving_window (a binary search for
# the oldest entry still inside the window, the list being sorted newest first). Requests of one
# user in one batch are counted one after the other, as if they had come one by one.
_ADMIT = """
local now, limit, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local since = now - window
local out = {}
for i = 1, #KEYS / 2 do
    local record, list = KEYS[2 * i - 1], KEYS[2 * i]
    if redis.call('GET', record) ~= ARGV[3 + i] then
        out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = ARGV[1]
    else
        local allowed = 0
        local full = redis.call('LINDEX', list, limit - 1)
        if not (full and tonumber(full) >= since) then
            redis.call('LPUSH', list, ARGV[1])
            redis.call('LTRIM', list, 0, limit - 1)
            redis.call('EXPIRE', list, window)
            allowed = 1
        end
        local low, high, found = 0, redis.call('LLEN', list) - 1, -1
        while low <= high do
            local mid = math.floor((low + high) / 2)
            local at = tonumber(redis.call('LINDEX', list, mid))
            if at and at >= since then found = mid; low = mid + 1 else high = mid - 1 end
        end
        out[#out + 1] = 1; out[#out + 1] = allowed; out[#out + 1] = found + 1
        out[#out + 1] = found < 0 and ARGV[1] or redis.call('LINDEX', list, found)
    end
end
return out
"""


class RequestGate(Protocol):
    """Admits a verified token's request: revocation check plus the per-user rate limit."""

    async def admit(self, claims: TokenClaims) -> RateLimitState:
        """Spend one request of the user's budget; NotAuthenticated if the token was revoked.

        The returned state says whether the request is allowed (else the API answers 429).
        """

    def with_limiter(self, limiter: ApiRateLimiter) -> RequestGate:
        """The same gate counting with `limiter` (another limit, in tests and benchmarks)."""


class LocalGate:
    """Asks a token store, then a limiter, one after the other (embedded mode, and tests)."""

    def __init__(self, store: TokenStore, limiter: ApiRateLimiter) -> None:
        self._store = store
        self._limiter = limiter

    async def admit(self, claims: TokenClaims) -> RateLimitState:
        """Check the token store, then spend from the limiter."""
        if not await self._store.is_active(claims.jti, claims.user_id):
            raise NotAuthenticated("invalid or expired token")
        return await self._limiter.check(rate_limit_key(user_id=claims.user_id, ip=None))

    def with_limiter(self, limiter: ApiRateLimiter) -> LocalGate:
        """This store with another limiter."""
        return LocalGate(self._store, limiter)


class RedisGate:
    """Both checks by one Lua script on the shared Redis (production), for many requests at once.

    Requests that ask while a batch is being gathered (the same turn of the event loop) share
    one script call: one round trip, and one client call's overhead, for all of them. Each is
    still checked after it arrived, so a revocation that finished before a request came in is
    always seen. (All keys of one call must live on one Redis server: no Redis Cluster.)
    """

    def __init__(
        self,
        redis: Redis,
        store: RedisTokenStore,
        limiter: ApiRateLimiter,
        *,
        max_batch: int = AUTH_GATE_MAX_BATCH,
    ) -> None:
        self._redis = redis
        self._store = store
        self._limiter = limiter
        self._admit = redis.register_script(_ADMIT)
        self._batches: Coalescer[TokenClaims, RateLimitState | None] = Coalescer(
            self._admit_all, max_batch=max_batch
        )

    def with_limiter(self, limiter: ApiRateLimiter) -> RequestGate:
        """This store with another limiter: one script if it shares Redis, else two steps."""
        if limiter.shared:
            return RedisGate(self._redis, self._store, limiter)
        return LocalGate(self._store, limiter)

    async def admit(self, claims: TokenClaims) -> RateLimitState:
        """Join the next batch; NotAuthenticated if the token's record is gone."""
        state = await self._batches.submit(claims)
        if state is None:
            raise NotAuthenticated("invalid or expired token")
        return state

    async def _admit_all(self, batch: Sequence[TokenClaims]) -> list[RateLimitState | None]:
        limiter = self._limiter
        keys: list[str] = []
        for claims in batch:
            keys.append(self._store.record_key(claims.jti))
            keys.append(limiter.storage_key(rate_limit_key(user_id=claims.user_id, ip=None)))
        # `limits` keeps time with time.time(); the window's entries must use the same clock.
        now = time.time()
        stamp = repr(now)
        users = [str(claims.user_id) for claims in batch]
        found = await self._admit(
            keys=keys, args=[stamp, limiter.limit, limiter.window_seconds, *users]
        )
        states: list[RateLimitState | None] = []
        for i in range(len(batch)):
            active, allowed, in_window, oldest = found[4 * i : 4 * i + 4]
            states.append(
                limiter.state(
                    allowed=bool(int(allowed)),
                    remaining=limiter.limit - int(in_window),
                    reset_time=float(oldest) + limiter.window_seconds,
                    now=now,
                )
                if int(active)
                else None
            )
        return states
