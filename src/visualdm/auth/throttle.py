"""Login throttle: after too many failures for one account or one IP, refuse tries for a while.

Counters are fixed windows that start at the first failure (thresholds from the registry). Keys
hold a hash of the account name and IP, never the values themselves (they are personal data).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Protocol

from redis.asyncio import Redis

from visualdm.clock import Clock
from visualdm.errors import RateLimited
from visualdm.ownership import LOGIN_THROTTLE_ACCOUNT, LOGIN_THROTTLE_IP, LoginThrottlePolicy


def _subjects(username: str, ip: str | None) -> list[tuple[str, LoginThrottlePolicy]]:
    """The counters a login attempt touches: its account name and, if known, its IP."""
    name = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
    subjects = [(f"acct:{name}", LOGIN_THROTTLE_ACCOUNT)]
    if ip:
        subjects.append((f"ip:{hashlib.sha256(ip.encode()).hexdigest()[:32]}", LOGIN_THROTTLE_IP))
    return subjects


def _refuse(retry_after: float, policy: LoginThrottlePolicy) -> RateLimited:
    return RateLimited(
        "too many failed logins; try again later",
        retry_after=max(1, math.ceil(retry_after)),
        limit=policy.max_failures,
    )


class LoginThrottle(Protocol):
    """Counts failed logins per account and per IP."""

    async def check(self, *, username: str, ip: str | None) -> None:
        """Raise RateLimited (with retry_after) if this account or IP is locked out now."""

    async def failed(self, *, username: str, ip: str | None) -> None:
        """Count a failed attempt against the account and the IP."""

    async def succeeded(self, *, username: str, ip: str | None) -> None:
        """Clear the account's failures (the IP's stay: it may be guessing other accounts)."""


class MemoryLoginThrottle:
    """The embedded throttle; windows follow the injected clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._counts: dict[str, tuple[int, datetime]] = {}

    def _live(self, key: str) -> tuple[int, datetime] | None:
        entry = self._counts.get(key)
        if entry is not None and entry[1] <= self._clock.now():
            del self._counts[key]
            return None
        return entry

    async def check(self, *, username: str, ip: str | None) -> None:
        """Raise RateLimited while a counter is at its threshold."""
        for key, policy in _subjects(username, ip):
            entry = self._live(key)
            if entry is not None and entry[0] >= policy.max_failures:
                wait = (entry[1] - self._clock.now()).total_seconds()
                raise _refuse(wait, policy)

    async def failed(self, *, username: str, ip: str | None) -> None:
        """Increment both counters; a counter's window starts at its first failure."""
        for key, policy in _subjects(username, ip):
            entry = self._live(key)
            ends = entry[1] if entry else self._clock.now() + policy.window
            self._counts[key] = ((entry[0] if entry else 0) + 1, ends)

    async def succeeded(self, *, username: str, ip: str | None) -> None:
        """Drop the account counter."""
        self._counts.pop(_subjects(username, None)[0][0], None)


class RedisLoginThrottle:
    """The shared throttle: `<prefix>:auth:fail:<kind>:<hash>` counters with a TTL."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{prefix}:auth:fail:"

    async def check(self, *, username: str, ip: str | None) -> None:
        """Read both counters and their TTLs in one round trip."""
        subjects = _subjects(username, ip)
        async with self._redis.pipeline(transaction=False) as pipe:
            for key, _ in subjects:
                pipe.get(self._prefix + key)
                pipe.pttl(self._prefix + key)
            replies = await pipe.execute()
        for i, (_, policy) in enumerate(subjects):
            count, ttl_ms = replies[2 * i], replies[2 * i + 1]
            if count is not None and int(count) >= policy.max_failures and ttl_ms > 0:
                raise _refuse(ttl_ms / 1000, policy)

    async def failed(self, *, username: str, ip: str | None) -> None:
        """INCR both counters; the TTL is set only by the first failure of a window."""
        async with self._redis.pipeline(transaction=True) as pipe:
            for key, policy in _subjects(username, ip):
                pipe.incr(self._prefix + key)
                pipe.pexpire(self._prefix + key, _ms(policy.window), nx=True)
            await pipe.execute()

    async def succeeded(self, *, username: str, ip: str | None) -> None:
        """Delete the account counter."""
        await self._redis.delete(self._prefix + _subjects(username, None)[0][0])


def _ms(delta: timedelta) -> int:
    return int(delta.total_seconds() * 1000)
