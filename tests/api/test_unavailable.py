"""A backing service that does not answer gives a retryable 503 problem, never a 500."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support.api import api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role


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
    assert r.status_code == 503
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["retry-after"] == "1"
    assert r.json()["type"] == "urn:visualdm:problem:unavailable"
