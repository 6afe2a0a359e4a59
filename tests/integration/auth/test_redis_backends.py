"""Token store, login throttle and API limiter on real Redis, shared by independent clients."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from visualdm.auth.ratelimit import ApiRateLimiter
from visualdm.auth.throttle import RedisLoginThrottle
from visualdm.auth.token_store import RedisTokenStore
from visualdm.clock import FrozenClock
from visualdm.errors import RateLimited
from visualdm.ownership import API_RATE_LIMIT, LOGIN_THROTTLE_ACCOUNT

DAY = timedelta(hours=24)


async def test_a_logout_in_one_process_is_seen_at_once_by_another(
    redis_a: Redis, redis_b: Redis, prefix: str, clock: FrozenClock
) -> None:
    one = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    two = RedisTokenStore(redis_b, prefix=prefix, clock=clock)
    await one.record("j1", 5, clock.now() + DAY)
    await one.record("j2", 5, clock.now() + DAY)
    assert await two.is_active("j1", 5)
    assert not await two.is_active("j1", 6)
    await two.revoke("j1")
    assert not await one.is_active("j1", 5)
    assert await one.is_active("j2", 5)


async def test_revoking_a_user_ends_their_tokens_everywhere_and_only_theirs(
    redis_a: Redis, redis_b: Redis, prefix: str, clock: FrozenClock
) -> None:
    one = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    two = RedisTokenStore(redis_b, prefix=prefix, clock=clock)
    for jti in ("a1", "a2", "a3"):
        await one.record(jti, 1, clock.now() + DAY)
    await one.record("b1", 2, clock.now() + DAY)
    assert await two.revoke_user(1) == 3
    for jti in ("a1", "a2", "a3"):
        assert not await one.is_active(jti, 1)
    assert await one.is_active("b1", 2)
    await two.record("a4", 1, clock.now() + DAY)
    assert await one.is_active("a4", 1)


async def test_token_records_expire_with_the_token(
    redis_a: Redis, prefix: str, clock: FrozenClock
) -> None:
    store = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    await store.record("j1", 1, clock.now() + DAY)
    ttl_ms = await redis_a.pttl(f"{prefix}:auth:jti:j1")
    assert DAY.total_seconds() * 1000 - 5_000 < ttl_ms <= DAY.total_seconds() * 1000
    index_ttl = await redis_a.pttl(f"{prefix}:auth:user:1")
    assert 0 < index_ttl <= DAY.total_seconds() * 1000


async def test_a_check_is_one_round_trip(
    redis_a: Redis, prefix: str, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = RedisTokenStore(redis_a, prefix=prefix, clock=clock)
    await store.record("j1", 1, clock.now() + DAY)
    commands: list[tuple[object, ...]] = []
    real: Any = redis_a.execute_command

    async def counting(*args: object, **options: object) -> object:
        commands.append(args)
        return await real(*args, **options)

    monkeypatch.setattr(redis_a, "execute_command", counting)
    assert await store.is_active("j1", 1)
    assert len(commands) == 1


async def test_the_login_throttle_is_shared_by_processes(
    redis_a: Redis, redis_b: Redis, prefix: str
) -> None:
    one = RedisLoginThrottle(redis_a, prefix=prefix)
    two = RedisLoginThrottle(redis_b, prefix=prefix)
    for i in range(LOGIN_THROTTLE_ACCOUNT.max_failures):
        await (one if i % 2 else two).failed(username="Frodo", ip=f"10.0.0.{i}")
    with pytest.raises(RateLimited) as refused:
        await two.check(username="frodo", ip="10.1.1.1")
    window = LOGIN_THROTTLE_ACCOUNT.window.total_seconds()
    assert window - 5 <= refused.value.retry_after <= window
    await one.succeeded(username="frodo", ip=None)
    await two.check(username="frodo", ip="10.1.1.1")


async def test_throttle_keys_do_not_contain_the_name_or_ip(redis_a: Redis, prefix: str) -> None:
    await RedisLoginThrottle(redis_a, prefix=prefix).failed(username="frodo", ip="10.0.0.1")
    keys = [k.decode() async for k in redis_a.scan_iter(match=f"{prefix}:*")]
    assert len(keys) == 2
    assert not any("frodo" in k or "10.0.0.1" in k for k in keys)


async def test_the_rate_limit_is_shared_by_two_limiters(
    redis_a: Redis, redis_b: Redis, prefix: str
) -> None:
    one = ApiRateLimiter.on_redis(redis_a, prefix=prefix)
    two = ApiRateLimiter.on_redis(redis_b, prefix=prefix)
    budget = API_RATE_LIMIT.requests_per_window
    assert budget is not None
    for i in range(budget):
        state = await (one if i % 2 else two).check("user:9")
        assert state.allowed
    assert state.remaining == 0
    for limiter in (one, two):
        refused = await limiter.check("user:9")
        assert not refused.allowed
        assert 1 <= refused.reset_after <= 60
    assert (await one.check("user:10")).allowed
    keys = [k.decode() async for k in redis_a.scan_iter(match=f"{prefix}:*")]
    assert keys
    assert all(k.startswith(f"{prefix}:ratelimit") for k in keys)
