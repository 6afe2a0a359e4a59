"""The token store: which issued tokens are still good (spec 2.5: token-based with Redis, 24 h).

Every issued jti is recorded until its expiry; logout deletes one record, and revoking a user
deletes all of theirs. A token is active only while its record exists, so a revocation is seen
at once by every process sharing the store, and a check is one Redis round trip.
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from redis.asyncio import Redis

from visualdm.clock import Clock


class TokenStore(Protocol):
    """Where issued tokens are recorded and revoked."""

    async def record(self, jti: str, user_id: int, expires_at: datetime) -> None:
        """Remember that `jti` was issued to `user_id` and is good until `expires_at`."""

    async def revoke(self, jti: str) -> None:
        """Make one token invalid (logout)."""

    async def revoke_user(self, user_id: int) -> int:
        """Make every token of `user_id` invalid; returns how many were active."""

    async def is_active(self, jti: str, user_id: int) -> bool:
        """Whether `jti` was issued to `user_id`, has not expired and has not been revoked."""


class MemoryTokenStore:
    """The embedded (single-process) token store; expiry follows the injected clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._tokens: dict[str, tuple[int, datetime]] = {}
        self._by_user: dict[int, set[str]] = {}

    async def record(self, jti: str, user_id: int, expires_at: datetime) -> None:
        """Remember `jti` until `expires_at`, dropping this user's expired records."""
        now = self._clock.now()
        mine = self._by_user.setdefault(user_id, set())
        for old in [j for j in mine if self._tokens.get(j, (0, now))[1] <= now]:
            mine.discard(old)
            self._tokens.pop(old, None)
        self._tokens[jti] = (user_id, expires_at)
        mine.add(jti)

    async def revoke(self, jti: str) -> None:
        """Forget `jti`."""
        entry = self._tokens.pop(jti, None)
        if entry is not None:
            self._by_user.get(entry[0], set()).discard(jti)

    async def revoke_user(self, user_id: int) -> int:
        """Forget every token of `user_id`."""
        jtis = self._by_user.pop(user_id, set())
        now = self._clock.now()
        active = [j for j in jtis if (e := self._tokens.pop(j, None)) and e[1] > now]
        return len(active)

    async def is_active(self, jti: str, user_id: int) -> bool:
        """Whether the record exists, belongs to `user_id` and has not expired."""
        entry = self._tokens.get(jti)
        return entry is not None and entry[0] == user_id and entry[1] > self._clock.now()


# Deletes every jti record listed in the user's index, then the index; atomic, so a concurrent
# record() lands either before (and is revoked) or after (a token issued after the revocation).
_REVOKE_USER = """
local jtis = redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[2], '+inf')
for _, jti in ipairs(jtis) do redis.call('DEL', ARGV[1] .. jti) end
redis.call('DEL', KEYS[1])
return #jtis
"""


class RedisTokenStore:
    """The shared token store: `<prefix>:auth:jti:<jti>` -> user id with a TTL, plus a per-user
    index `<prefix>:auth:user:<id>` (sorted set of jtis by expiry) for revoke-all."""

    def __init__(self, redis: Redis, *, prefix: str, clock: Clock) -> None:
        self._redis = redis
        self._jti_prefix = f"{prefix}:auth:jti:"
        self._user_prefix = f"{prefix}:auth:user:"
        self._clock = clock
        self._revoke_user = redis.register_script(_REVOKE_USER)

    async def record(self, jti: str, user_id: int, expires_at: datetime) -> None:
        """Store the jti record and index it under the user, in one transaction."""
        now = self._clock.now()
        ttl_ms = max(1, int((expires_at - now).total_seconds() * 1000))
        index = f"{self._user_prefix}{user_id}"
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.set(self.record_key(jti), str(user_id), px=ttl_ms)
            pipe.zadd(index, {jti: expires_at.timestamp()})
            pipe.zremrangebyscore(index, "-inf", now.timestamp())
            # The index lives as long as the newest token it lists (GT: never shortened).
            pipe.pexpire(index, ttl_ms, gt=True)
            pipe.pexpire(index, ttl_ms, nx=True)
            await pipe.execute()

    def record_key(self, jti: str) -> str:
        """The key of `jti`'s record (its value is the user id; the gate reads it too)."""
        return f"{self._jti_prefix}{jti}"

    async def revoke(self, jti: str) -> None:
        """Delete the jti record (its index entry expires with the index)."""
        await self._redis.delete(self.record_key(jti))

    async def revoke_user(self, user_id: int) -> int:
        """Delete every jti record of `user_id` atomically."""
        count = await self._revoke_user(
            keys=[f"{self._user_prefix}{user_id}"],
            args=[self._jti_prefix, self._clock.now().timestamp()],
        )
        return int(count)

    async def is_active(self, jti: str, user_id: int) -> bool:
        """One GET: the record exists (not expired, not revoked) and names `user_id`."""
        owner = await self._redis.get(self.record_key(jti))
        return owner is not None and int(owner) == user_id
