"""A backing service that does not answer gives a retryable 503 problem, never a 500; an
error nothing maps is still a problem (500, with a request id), and the connection stays up."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, PendingRollbackError

from tests.support.api import ApiUser, api_client, make_user
from tests.support.databases import ROLE_PREFIX
from tests.support.services import POSTGRES_URL
from visualdm.characters import service as characters
from visualdm.characters.models import Character
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database, create_database
from visualdm.ownership import UNAVAILABLE_RETRY_AFTER, Role
from visualdm.settings import Settings

POSTGRES = pytest.mark.parametrize("database", ["postgres"], indirect=True)
NEW_CHARACTER = {"name": "Aria", "race": "elf"}


def _assert_unavailable(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == str(int(UNAVAILABLE_RETRY_AFTER.total_seconds()))
    assert r.json()["type"] == "urn:visualdm:problem:unavailable"
    assert r.json()["request_id"]


async def _characters(database: Database) -> int:
    async with database.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(Character)) or 0)


async def test_redis_down_during_the_token_check_is_a_503(
    database: Database, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with api_client(database, clock) as (client, runtime, _app):
        gm = await make_user(runtime, "gamemaster", Role.GM)
        assert (await client.get("/v1/characters", headers=gm.headers)).status_code == 200

        async def down(*_args: object, **_kwargs: object) -> bool:
            raise RedisConnectionError("connection refused")

        monkeypatch.setattr(runtime.auth.store, "is_active", down)
        r = await client.get("/v1/characters", headers=gm.headers)
    _assert_unavailable(r)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens on it once the socket is closed


async def test_postgres_refusing_connections_is_a_503(clock: FrozenClock) -> None:
    url = POSTGRES_URL.rsplit("@", 1)[0] + f"@127.0.0.1:{_closed_port()}/postgres"
    down = create_database(Settings(database_url=url), role_prefix=ROLE_PREFIX)
    try:
        async with api_client(down, clock) as (client, runtime, _app):
            token, claims = runtime.auth.codec.issue(1, frozenset({Role.GM}))
            await runtime.auth.store.record(claims.jti, 1, claims.expires_at)
            headers = {"Authorization": f"Bearer {token}"}
            _assert_unavailable(
                await client.post("/v1/characters", json=NEW_CHARACTER, headers=headers)
            )
            # The keep-alive connection is still answered.
            _assert_unavailable(await client.get("/v1/characters", headers=headers))
    finally:
        await down.dispose()


@pytest.fixture
async def gm_client(
    database: Database, clock: FrozenClock
) -> AsyncIterator[tuple[httpx.AsyncClient, ApiUser]]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield client, await make_user(runtime, "gamemaster", Role.GM)


@POSTGRES
async def test_postgres_starting_up_is_a_503(
    database: Database,
    gm_client: tuple[httpx.AsyncClient, ApiUser],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, gm = gm_client
    await database.engine.dispose()  # the next request must open a connection

    async def starting_up(*_args: object, **_kwargs: object) -> None:
        raise asyncpg.CannotConnectNowError("the database system is starting up")

    monkeypatch.setattr(asyncpg, "connect", starting_up)
    r = await client.post("/v1/characters", json=NEW_CHARACTER, headers=gm.headers)
    monkeypatch.undo()
    _assert_unavailable(r)
    assert await _characters(database) == 0


@POSTGRES
@pytest.mark.parametrize(
    "error",
    [
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.exceptions.InternalClientError("unexpected connection state"),
    ],
    ids=["shutting-down", "connection-lost", "internal-client-error"],
)
async def test_postgres_failing_mid_request_is_a_503(
    database: Database,
    gm_client: tuple[httpx.AsyncClient, ApiUser],
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
) -> None:
    client, gm = gm_client

    async def fail(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(asyncpg.Connection, "prepare", fail)
    r = await client.post("/v1/characters", json=NEW_CHARACTER, headers=gm.headers)
    monkeypatch.undo()
    _assert_unavailable(r)
    assert await _characters(database) == 0


@POSTGRES
async def test_an_exhausted_connection_pool_is_a_503(
    database: Database,
    gm_client: tuple[httpx.AsyncClient, ApiUser],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, gm = gm_client
    pool = database.engine.sync_engine.pool
    monkeypatch.setattr(pool, "_timeout", 0.05)
    held = [await database.engine.connect() for _ in range(pool.size() + pool._max_overflow)]  # type: ignore[attr-defined]
    try:
        r = await client.post("/v1/characters", json=NEW_CHARACTER, headers=gm.headers)
    finally:
        for conn in held:
            await conn.close()
    _assert_unavailable(r)
    assert await _characters(database) == 0


async def test_an_unexpected_error_is_a_500_problem_with_a_request_id(
    database: Database,
    gm_client: tuple[httpx.AsyncClient, ApiUser],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, gm = gm_client

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(characters, "create_character", broken)
    r = await client.post("/v1/characters", json=NEW_CHARACTER, headers=gm.headers)
    assert r.status_code == 500
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["type"] == "urn:visualdm:problem:internal_error"
    assert len(body["request_id"]) == 16
    assert "a bug" not in r.text
    monkeypatch.undo()
    # The same client (connection) is answered again.
    assert (await client.get("/v1/characters", headers=gm.headers)).status_code == 200
    assert await _characters(database) == 0


@POSTGRES
async def test_a_session_left_by_a_lost_connection_is_a_503(
    database: Database,
    gm_client: tuple[httpx.AsyncClient, ApiUser],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What clean-up raises when it touches a session whose connection died mid-flush.
    client, gm = gm_client

    async def lost(*_args: object, **_kwargs: object) -> None:
        try:
            raise DBAPIError(
                "INSERT INTO characters ...",
                {},
                asyncpg.ConnectionDoesNotExistError(
                    "connection was closed in the middle of operation"
                ),
            )
        except DBAPIError:
            raise PendingRollbackError("the transaction was rolled back") from None

    monkeypatch.setattr(characters, "create_character", lost)
    r = await client.post("/v1/characters", json=NEW_CHARACTER, headers=gm.headers)
    monkeypatch.undo()
    _assert_unavailable(r)
    assert await _characters(database) == 0
