"""Sessions over HTTP: register, login, logout, /me, password change, throttling, rate limits."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from limits.aio.storage import MemoryStorage

from tests.support.accounts import PASSWORD, account, audit_entries, create_account, log_in
from tests.support.api import api_client, make_user
from visualdm.auth.ratelimit import ApiRateLimiter
from visualdm.auth.tokens import TokenCodec
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import API_RATE_LIMIT, LOGIN_THROTTLE_ACCOUNT, Domain, Role, cache_ttl
from visualdm.runtime import Runtime

Api = tuple[httpx.AsyncClient, Runtime]
NEW_PASSWORD = "another long passphrase"


@pytest.fixture
async def api(database: Database, clock: FrozenClock) -> AsyncIterator[Api]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield client, runtime


def _small_limit(runtime: Runtime, per_minute: int) -> None:
    """Give the runtime a limiter of `per_minute` requests (the registry's boundary, shrunk)."""
    boundary = dataclasses.replace(API_RATE_LIMIT, requests_per_window=per_minute)
    limiter = ApiRateLimiter(MemoryStorage(), boundary)
    runtime.auth = runtime.auth.with_limiter(limiter)


def _is_problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"urn:visualdm:problem:{code}"


async def test_registration_creates_a_player_only(api: Api) -> None:
    client, _ = api
    body = {"username": "newbie", "password": PASSWORD, "email": "n@example.test"}
    r = await client.post("/v1/auth/register", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["roles"] == ["player"]
    assert r.headers["location"] == f"/v1/users/{r.json()['id']}"
    escalate = await client.post("/v1/auth/register", json={**body, "roles": ["admin"]})
    _is_problem(escalate, 422, "validation_error")
    dup = await client.post("/v1/auth/register", json={**body, "username": "NEWBIE"})
    _is_problem(dup, 409, "conflict")
    weak = await client.post("/v1/auth/register", json={"username": "weak", "password": "short"})
    _is_problem(weak, 422, "rule_violation")


async def test_login_gives_a_bearer_token_that_works_until_it_expires(
    api: Api, clock: FrozenClock
) -> None:
    client, runtime = api
    await create_account(runtime, "gandalf", Role.GM)
    r = await log_in(client, "Gandalf")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == int(cache_ttl(Domain.AUTHENTICATION).total_seconds())
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    me = await client.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["username"] == "gandalf"
    assert me.json()["roles"] == ["gm"]
    clock.advance(cache_ttl(Domain.AUTHENTICATION))
    _is_problem(await client.get("/v1/auth/me", headers=headers), 401, "not_authenticated")


async def test_every_login_attempt_is_audited_with_the_ip_and_failures_are_401(api: Api) -> None:
    client, runtime = api
    user_id = await create_account(runtime, "frodo")
    for name, password in (("frodo", "not the password!"), ("nobody", PASSWORD)):
        r = await log_in(client, name, password)
        _is_problem(r, 401, "not_authenticated")
        assert r.headers["www-authenticate"] == "Bearer"
        assert r.json()["detail"] == "invalid username or password"
    assert (await log_in(client, "frodo")).status_code == 200
    failed = await audit_entries(runtime, "login_failed")
    assert [(e.actor_system, e.changes["outcome"]) for e in failed] == [
        ("authentication", "bad_password"),
        ("authentication", "unknown_user"),
    ]
    assert [e.personal["ip"] if e.personal else None for e in failed] == ["127.0.0.1"] * 2
    (ok,) = await audit_entries(runtime, "login")
    assert ok.actor_user_id == user_id
    assert ok.personal is not None
    assert ok.personal["ip"] == "127.0.0.1"


async def test_repeated_failures_throttle_logins_with_429_and_retry_after(api: Api) -> None:
    client, runtime = api
    await create_account(runtime, "pippin")
    for _ in range(LOGIN_THROTTLE_ACCOUNT.max_failures):
        assert (await log_in(client, "pippin", "wrong password!!")).status_code == 401
    r = await log_in(client, "pippin")  # the right password, but too late
    _is_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    throttled = await audit_entries(runtime, "login_failed")
    assert throttled[-1].changes["outcome"] == "throttled"


async def test_logout_revokes_only_the_token_it_carries(api: Api) -> None:
    client, runtime = api
    first = await account(client, runtime, "merry")
    second = (await log_in(client, "merry")).json()["access_token"]
    assert (await client.post("/v1/auth/logout", headers=first.headers)).status_code == 204
    _is_problem(await client.get("/v1/auth/me", headers=first.headers), 401, "not_authenticated")
    again = await client.post("/v1/auth/logout", headers=first.headers)
    _is_problem(again, 401, "not_authenticated")
    still = await client.get("/v1/auth/me", headers={"Authorization": f"Bearer {second}"})
    assert still.status_code == 200
    assert len(await audit_entries(runtime, "logout")) == 1


async def test_a_password_change_needs_the_current_one_and_ends_every_session(api: Api) -> None:
    client, runtime = api
    sam = await account(client, runtime, "samwise")
    url = "/v1/auth/password"
    wrong = {"current_password": "not my password", "new_password": NEW_PASSWORD}
    _is_problem(await client.post(url, json=wrong, headers=sam.headers), 403, "permission_denied")
    assert (await client.get("/v1/auth/me", headers=sam.headers)).status_code == 200
    right = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    assert (await client.post(url, json=right, headers=sam.headers)).status_code == 204
    _is_problem(await client.get("/v1/auth/me", headers=sam.headers), 401, "not_authenticated")
    assert (await log_in(client, "samwise")).status_code == 401
    assert (await log_in(client, "samwise", NEW_PASSWORD)).status_code == 200


async def test_me_answers_every_role_and_refuses_anonymous_and_bad_tokens(api: Api) -> None:
    client, runtime = api
    for role in (Role.PLAYER, Role.GM, Role.ADMIN):
        user = await make_user(runtime, f"user_{role.value}", role)
        r = await client.get("/v1/auth/me", headers=user.headers)
        assert r.status_code == 200
        assert r.json()["id"] == user.id
        assert r.json()["roles"] == [role.value]
    forged, _ = TokenCodec("another-secret-" + "y" * 40, clock=runtime.clock).issue(
        user.id, frozenset({Role.ADMIN})
    )
    for headers in (
        {},
        {"Authorization": "Bearer nonsense"},
        {"Authorization": f"Bearer {forged}"},
        {"Authorization": user.headers["Authorization"].replace("Bearer", "Basic")},
    ):
        r = await client.get("/v1/auth/me", headers=headers)
        _is_problem(r, 401, "not_authenticated")
    for path in ("/v1/auth/logout", "/v1/auth/password"):
        _is_problem(await client.post(path, json={}), 401, "not_authenticated")


async def test_a_token_whose_record_is_gone_is_refused(api: Api) -> None:
    client, runtime = api
    user = await make_user(runtime, "revoked")
    assert (await client.get("/v1/auth/me", headers=user.headers)).status_code == 200
    await runtime.auth.store.revoke_user(user.id)
    _is_problem(await client.get("/v1/auth/me", headers=user.headers), 401, "not_authenticated")


async def test_the_rate_limit_is_429_with_retry_after_and_ratelimit_headers(api: Api) -> None:
    client, runtime = api
    _small_limit(runtime, 3)
    alice = await make_user(runtime, "alice")
    bob = await make_user(runtime, "bob")
    remaining = []
    for _ in range(3):
        r = await client.get("/v1/auth/me", headers=alice.headers)
        assert r.status_code == 200
        assert r.headers["ratelimit-limit"] == "3"
        remaining.append(r.headers["ratelimit-remaining"])
    assert remaining == ["2", "1", "0"]
    over = await client.get("/v1/auth/me", headers=alice.headers)
    _is_problem(over, 429, "rate_limited")
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert over.headers["ratelimit-remaining"] == "0"
    assert int(over.headers["ratelimit-reset"]) >= 1
    assert (await client.get("/v1/auth/me", headers=bob.headers)).status_code == 200


async def test_registration_is_rate_limited_per_client_ip(api: Api) -> None:
    client, runtime = api
    _small_limit(runtime, 2)
    for _ in range(2):  # invalid bodies still spend the budget: the limit is checked first
        r = await client.post("/v1/auth/register", json={})
        assert r.status_code == 422
    over = await client.post("/v1/auth/register", json={"username": "late", "password": PASSWORD})
    _is_problem(over, 429, "rate_limited")
    assert int(over.headers["retry-after"]) >= 1
    assert over.headers["ratelimit-limit"] == "2"


async def test_tokens_stop_working_when_the_clock_passes_their_expiry(
    api: Api, clock: FrozenClock
) -> None:
    client, runtime = api
    user = await make_user(runtime, "short_lived")
    clock.advance(cache_ttl(Domain.AUTHENTICATION) - timedelta(seconds=1))
    assert (await client.get("/v1/auth/me", headers=user.headers)).status_code == 200
    clock.advance(timedelta(seconds=1))
    _is_problem(await client.get("/v1/auth/me", headers=user.headers), 401, "not_authenticated")


async def test_a_cached_read_and_its_304_carry_the_budget_too(api: Api) -> None:
    # The character read answers with its cached document (or 304) as a Response of its own;
    # the RateLimit-* headers still come with it.
    client, runtime = api
    _small_limit(runtime, 5)
    alice = await make_user(runtime, "alice")
    made = await client.post(
        "/v1/characters", json={"name": "Ayla", "race": "elf"}, headers=alice.headers
    )
    assert made.status_code == 201, made.text
    url = f"/v1/characters/{made.json()['id']}"
    first = await client.get(url, headers=alice.headers)
    assert first.status_code == 200
    assert first.json()["name"] == "Ayla"
    assert (first.headers["ratelimit-limit"], first.headers["ratelimit-remaining"]) == ("5", "3")
    again = await client.get(url, headers={**alice.headers, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304
    assert again.headers["etag"] == first.headers["etag"]
    assert again.headers["ratelimit-remaining"] == "2"


async def test_requests_without_a_good_token_spend_their_ip_budget(api: Api) -> None:
    client, runtime = api
    _small_limit(runtime, 2)
    alice = await make_user(runtime, "alice")
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        _is_problem(await client.get("/v1/characters", headers=headers), 401, "not_authenticated")
    over = await client.get("/v1/characters", headers={"Authorization": "Bearer guess"})
    _is_problem(over, 429, "rate_limited")
    assert int(over.headers["retry-after"]) >= 1
    # A login is anonymous too, and the same IP has nothing left.
    _is_problem(await log_in(client, "alice"), 429, "rate_limited")
    # A user with a good token spends their own budget, not the IP's.
    assert (await client.get("/v1/characters", headers=alice.headers)).status_code == 200
