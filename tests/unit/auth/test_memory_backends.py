"""The in-process token store, login throttle and API rate limiter (embedded mode)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from visualdm.auth.ratelimit import ApiRateLimiter, rate_limit_key
from visualdm.auth.throttle import MemoryLoginThrottle
from visualdm.auth.token_store import MemoryTokenStore
from visualdm.clock import FrozenClock
from visualdm.errors import RateLimited
from visualdm.ownership import API_RATE_LIMIT, LOGIN_THROTTLE_ACCOUNT, LOGIN_THROTTLE_IP

DAY = timedelta(hours=24)


async def test_a_recorded_token_is_active_for_its_user_only(clock: FrozenClock) -> None:
    store = MemoryTokenStore(clock)
    await store.record("j1", 1, clock.now() + DAY)
    assert await store.is_active("j1", 1)
    assert not await store.is_active("j1", 2)
    assert not await store.is_active("unknown", 1)


async def test_a_token_stops_being_active_when_it_expires(clock: FrozenClock) -> None:
    store = MemoryTokenStore(clock)
    await store.record("j1", 1, clock.now() + DAY)
    clock.advance(DAY)
    assert not await store.is_active("j1", 1)


async def test_revoking_one_token_leaves_the_others(clock: FrozenClock) -> None:
    store = MemoryTokenStore(clock)
    await store.record("j1", 1, clock.now() + DAY)
    await store.record("j2", 1, clock.now() + DAY)
    await store.revoke("j1")
    assert not await store.is_active("j1", 1)
    assert await store.is_active("j2", 1)


async def test_revoking_a_user_ends_all_of_theirs_and_nobody_elses(clock: FrozenClock) -> None:
    store = MemoryTokenStore(clock)
    await store.record("a1", 1, clock.now() + DAY)
    await store.record("a2", 1, clock.now() + DAY)
    await store.record("b1", 2, clock.now() + DAY)
    assert await store.revoke_user(1) == 2
    assert not await store.is_active("a1", 1)
    assert not await store.is_active("a2", 1)
    assert await store.is_active("b1", 2)
    await store.record("a3", 1, clock.now() + DAY)
    assert await store.is_active("a3", 1)


async def test_the_account_is_refused_after_too_many_failures_until_the_window_ends(
    clock: FrozenClock,
) -> None:
    throttle = MemoryLoginThrottle(clock)
    for _ in range(LOGIN_THROTTLE_ACCOUNT.max_failures - 1):
        await throttle.failed(username="Bob", ip="10.0.0.1")
    await throttle.check(username="bob", ip="10.0.0.2")
    await throttle.failed(username="BOB", ip="10.0.0.3")
    with pytest.raises(RateLimited) as refused:
        await throttle.check(username="bob", ip="10.0.0.4")
    assert refused.value.retry_after == LOGIN_THROTTLE_ACCOUNT.window.total_seconds()
    assert refused.value.limit == LOGIN_THROTTLE_ACCOUNT.max_failures
    clock.advance(LOGIN_THROTTLE_ACCOUNT.window)
    await throttle.check(username="bob", ip="10.0.0.4")


async def test_an_ip_guessing_many_accounts_is_refused(clock: FrozenClock) -> None:
    throttle = MemoryLoginThrottle(clock)
    for i in range(LOGIN_THROTTLE_IP.max_failures):
        await throttle.failed(username=f"user{i}", ip="10.9.9.9")
    with pytest.raises(RateLimited):
        await throttle.check(username="someone-new", ip="10.9.9.9")
    await throttle.check(username="someone-new", ip="10.9.9.8")


async def test_a_success_clears_the_account_failures(clock: FrozenClock) -> None:
    throttle = MemoryLoginThrottle(clock)
    for _ in range(LOGIN_THROTTLE_ACCOUNT.max_failures):
        await throttle.failed(username="bob", ip=None)
    await throttle.succeeded(username="bob", ip=None)
    await throttle.check(username="bob", ip=None)


def test_the_rate_limit_key_is_the_user_or_else_the_ip() -> None:
    assert rate_limit_key(user_id=7, ip="10.0.0.1") == "user:7"
    assert rate_limit_key(user_id=None, ip="10.0.0.1") == "ip:10.0.0.1"


async def test_the_limiter_allows_the_registry_budget_then_refuses() -> None:
    limiter = ApiRateLimiter.in_memory()
    budget = API_RATE_LIMIT.requests_per_window
    assert budget is not None
    assert limiter.limit == budget
    states = [await limiter.check("user:1") for _ in range(budget)]
    assert all(s.allowed for s in states)
    assert [s.remaining for s in states[-2:]] == [1, 0]
    refused = await limiter.check("user:1")
    assert not refused.allowed
    assert refused.remaining == 0
    assert 1 <= refused.reset_after <= 60
    other = await limiter.check("user:2")
    assert other.allowed
    assert other.remaining == budget - 1
