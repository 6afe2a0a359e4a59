"""The request gate on real Redis: revocation and the shared rate limit in one script call."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta

import pytest
from redis.asyncio import Redis

from visualdm.auth.gate import RedisGate
from visualdm.auth.ratelimit import ApiRateLimiter
from visualdm.auth.token_store import RedisTokenStore
from visualdm.auth.tokens import TokenClaims
from visualdm.clock import FrozenClock
from visualdm.errors import NotAuthenticated
from visualdm.ownership import API_RATE_LIMIT, Role

DAY = timedelta(hours=24)


def _limiter(redis: Redis, prefix: str, per_minute: int) -> ApiRateLimiter:
    boundary = dataclasses.replace(API_RATE_LIMIT, requests_per_window=per_minute)
    return ApiRateLimiter.on_redis(redis, prefix=prefix, boundary=boundary)


async def _issued(store: RedisTokenStore, clock: FrozenClock, jti: str, user: int) -> TokenClaims:
    claims = TokenClaims(user, frozenset({Role.PLAYER}), jti, clock.now(), clock.now() + DAY)
    await store.record(jti, user, claims.expires_at)
    return claims


def _count_script_calls(gate: RedisGate) -> list[int]:
    """Count the gate's script calls (round trips) in the returned one-element list."""
    calls = [0]
    script = gate._admit

    async def counted(*args: object, **kwargs: object) -> object:
        calls[0] += 1
        return await script(*args, **kwargs)

    gate._admit = counted  # type: ignore[method-assign]
    return calls


async def test_concurrent_requests_share_one_call_and_the_limit_holds_exactly(
    redis_a: Redis, redis_b: Redis, prefix: str, clock: FrozenClock
) -> None:
    store = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    one = RedisGate(redis_a, store, _limiter(redis_a, prefix, 3))
    two = RedisGate(
        redis_b, RedisTokenStore(redis_b, prefix=prefix, clock=clock), _limiter(redis_b, prefix, 3)
    )
    alice = await _issued(store, clock, "alice-1", 1)
    bob = await _issued(store, clock, "bob-1", 2)
    calls = _count_script_calls(one)
    states = await asyncio.gather(*(one.admit(alice) for _ in range(5)), one.admit(bob))
    assert calls == [1]  # six requests, one round trip
    assert [s.allowed for s in states] == [True, True, True, False, False, True]
    assert [s.remaining for s in states[:3]] == [2, 1, 0]
    assert states[3].reset_after >= 1
    # Another process (another client and gate) shares the same budget.
    assert not (await two.admit(alice)).allowed
    assert (await two.admit(bob)).remaining == 1


async def test_a_revoked_token_is_refused_and_spends_nothing(
    redis_a: Redis, prefix: str, clock: FrozenClock
) -> None:
    store = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    limiter = _limiter(redis_a, prefix, 3)
    gate = RedisGate(redis_a, store, limiter)
    good = await _issued(store, clock, "good", 7)
    dead = await _issued(store, clock, "dead", 7)
    stolen = dataclasses.replace(good, user_id=8)  # a record names its user: no borrowing it
    await store.revoke("dead")
    results = await asyncio.gather(
        gate.admit(dead), gate.admit(stolen), gate.admit(good), return_exceptions=True
    )
    assert isinstance(results[0], NotAuthenticated)
    assert isinstance(results[1], NotAuthenticated)
    assert not isinstance(results[2], BaseException)
    assert results[2].remaining == 2  # only the good request was counted
    assert (await limiter.check("user:8")).remaining == 2  # nor was user 8's budget touched


async def test_the_gate_and_the_limits_library_count_the_same_window(
    redis_a: Redis, prefix: str, clock: FrozenClock
) -> None:
    store = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    limiter = _limiter(redis_a, prefix, 4)
    gate = RedisGate(redis_a, store, limiter)
    claims = await _issued(store, clock, "j", 3)
    await gate.admit(claims)
    await gate.admit(claims)
    via_limits = await limiter.check("user:3")  # `limits` sees the gate's two entries
    assert via_limits.remaining == 1
    last = await gate.admit(claims)  # and the gate sees the one `limits` added
    assert (last.allowed, last.remaining) == (True, 0)
    assert not (await gate.admit(claims)).allowed
    await limiter.reset("user:3")  # an admin's reset through `limits` clears the gate's window
    assert (await gate.admit(claims)).remaining == 3


async def test_a_redis_failure_reaches_every_waiting_request(
    prefix: str, clock: FrozenClock
) -> None:
    broken = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.5)
    try:
        store = RedisTokenStore(broken, prefix=prefix, clock=clock)
        gate = RedisGate(broken, store, _limiter(broken, prefix, 3))
        claims = TokenClaims(1, frozenset({Role.PLAYER}), "x", clock.now(), clock.now() + DAY)
        results = await asyncio.gather(
            gate.admit(claims), gate.admit(claims), return_exceptions=True
        )
        assert all(
            isinstance(r, Exception) and not isinstance(r, NotAuthenticated) for r in results
        )
    finally:
        await broken.aclose()


@pytest.mark.parametrize("batch", [1, 2])
async def test_batches_are_cut_at_their_size(
    redis_a: Redis, prefix: str, clock: FrozenClock, batch: int
) -> None:
    store = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    gate = RedisGate(redis_a, store, _limiter(redis_a, prefix, 100), max_batch=batch)
    users = [await _issued(store, clock, f"u{i}", 100 + i) for i in range(5)]
    calls = _count_script_calls(gate)
    states = await asyncio.gather(*(gate.admit(u) for u in users))
    assert all(s.allowed and s.remaining == 99 for s in states)
    assert calls == [-(-5 // batch)]
