"""The index reads' lean routes: as strict as the documented routes (authentication, the rate
limit, problem+json on bad input), answered from memory without touching the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy import event
from starlette.routing import Route

from tests.support.api import ApiUser, api_client, make_user
from tests.support.services import REDIS_URL
from visualdm.app import create_app
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import SPATIAL_NEAREST_MAX_K, Role
from visualdm.runtime import Runtime
from visualdm.settings import Settings
from visualdm.spatial import queries
from visualdm.spatial import sync as spatial_sync

SECRET = "test-secret-" + "x" * 40
READS = ("/v1/world/entities", "/v1/world/nearest", "/v1/world/path")


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    gm: ApiUser
    player: ApiUser


@pytest.fixture(params=["in-process", "redis"])
async def api(
    request: pytest.FixtureRequest, database: Database, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Api]:
    """The app on the test database, its gate and limits in process or on real Redis."""
    prefix = f"vdmtest_{uuid.uuid4().hex[:12]}"
    settings = (
        Settings(jwt_secret=SECRET, data_dir=tmp_path)
        if request.param == "in-process"
        else Settings(
            jwt_secret=SECRET, data_dir=tmp_path, redis_url=REDIS_URL, redis_prefix=prefix
        )
    )
    async with api_client(database, clock, settings) as (client, runtime, _app):
        try:
            yield Api(
                client,
                runtime,
                await make_user(runtime, "gamemaster", Role.GM),
                await make_user(runtime, "playerone", Role.PLAYER),
            )
        finally:
            await spatial_sync.stop(runtime)
            if runtime.redis is not None:
                await runtime.redis.aclose()
                redis = Redis.from_url(REDIS_URL)
                keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
                if keys:
                    await redis.delete(*keys)
                await redis.aclose()


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    """The SQL statements sent to `database` inside the block."""
    sent: list[str] = []

    def count(*args: Any) -> None:
        sent.append(str(args[2]))

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


async def _place(api: Api, **body: object) -> None:
    payload = {"kind": "house", "x": 0.0, "y": 0.0, "width": 4.0, "height": 4.0, **body}
    r = await api.client.post("/v1/world/entities", json=payload, headers=api.gm.headers)
    assert r.status_code == 201, r.text


def _problem(r: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = r.json()
    assert str(body["type"]).endswith(kind), body
    return body


async def test_the_index_reads_are_lean_routes_without_database_statements(
    api: Api, database: Database
) -> None:
    app = create_app(runtime=api.runtime)
    lean = [
        r.path for r in app.router.routes if isinstance(r, Route) and not hasattr(r, "dependant")
    ]
    assert set(READS) <= set(lean)
    await _place(api)
    await _place(api, kind="tree", x=20.0, is_solid=False)
    h = api.player.headers
    with statements(database) as sent:
        near = await api.client.get(
            "/v1/world/nearest", params={"x": 30, "y": 0, "k": 2}, headers=h
        )
        window = await api.client.get(
            "/v1/world/entities",
            params={"min_x": -5, "min_y": -5, "max_x": 25, "max_y": 5, "kind": ["tree"]},
            headers=h,
        )
        path = await api.client.get(
            "/v1/world/path", params={"x0": -10, "y0": 0, "x1": 30, "y1": 0}, headers=h
        )
    assert sent == []
    # The nearest answer is encoded without pydantic: it must be EntityList's JSON exactly.
    world = await spatial_sync.world_of(api.runtime)
    expected = queries.nearest(world, actor=api.player.actor, x=30, y=0, k=2)
    assert near.json() == expected.model_dump(mode="json")
    assert [e["kind"] for e in near.json()["items"]] == ["tree", "house"]
    assert near.json()["items"][0]["distance"] == pytest.approx(8.0)
    assert near.headers["content-type"] == "application/json"
    assert near.headers["ratelimit-limit"] == "100"
    assert [e["kind"] for e in window.json()["items"]] == ["tree"]
    assert path.json()["blocked_by"] is not None


@pytest.mark.parametrize("route", READS)
@pytest.mark.parametrize("authorization", [None, "Bearer not-a-token", "Basic abc"])
async def test_the_index_reads_need_a_valid_token(
    api: Api, route: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    r = await api.client.get(route, params={"x": 0, "y": 0, "r": 1}, headers=headers)
    _problem(r, 401, "not_authenticated")


async def test_a_revoked_token_is_refused(api: Api) -> None:
    r = await api.client.post("/v1/auth/logout", headers=api.player.headers)
    assert r.status_code in (200, 204), r.text
    r = await api.client.get(
        "/v1/world/nearest", params={"x": 0, "y": 0}, headers=api.player.headers
    )
    _problem(r, 401, "not_authenticated")


async def test_the_index_reads_spend_the_shared_rate_limit(api: Api) -> None:
    h = api.player.headers
    answers = [
        (await api.client.get("/v1/world/nearest", params={"x": 0, "y": 0}, headers=h)).status_code
        for _ in range(100)
    ]
    assert answers == [200] * 100
    refused = await api.client.get("/v1/world/entities", params={"x": 0, "y": 0, "r": 1}, headers=h)
    _problem(refused, 429, "rate_limited")
    assert "retry-after" in refused.headers
    assert refused.headers["ratelimit-remaining"] == "0"


@pytest.mark.parametrize(
    ("params", "kind", "where"),
    [
        ({"x": "\x00", "y": 0}, "validation_error", ["query", "x"]),
        ({"x": "1\x00", "y": 0}, "validation_error", ["query", "x"]),
        ({"y": 0}, "validation_error", ["query", "x"]),
        ({"x": "nan", "y": 0}, "rule_violation", None),
        ({"x": "1e400", "y": 0}, "rule_violation", None),
        ({"x": 0, "y": 0, "max_distance": "-1e400"}, "rule_violation", None),
        ({"x": 0, "y": 0, "k": 0}, "validation_error", ["query", "k"]),
        ({"x": 0, "y": 0, "k": SPATIAL_NEAREST_MAX_K + 1}, "rule_violation", None),
        ({"x": 0, "y": 0, "k": 2**63}, "rule_violation", None),
        ({"x": 0, "y": 0, "k": 2**64 + 1}, "rule_violation", None),
        ({"x": 0, "y": 0, "k": "1.5"}, "validation_error", ["query", "k"]),
        ({"x": 0, "y": 0, "kind": [f"k{i}" for i in range(21)]}, "validation_error", None),
    ],
)
async def test_bad_nearest_input_is_a_problem(
    api: Api, params: dict[str, Any], kind: str, where: list[str] | None
) -> None:
    r = await api.client.get("/v1/world/nearest", params=params, headers=api.player.headers)
    body = _problem(r, 422, kind)
    if where is not None:
        assert [e["loc"] for e in body["errors"]] == [where]


@pytest.mark.parametrize(
    ("route", "params"),
    [
        ("/v1/world/entities", {"x": 0, "y": 0, "r": "\x00"}),
        ("/v1/world/entities", {"x": "1e400", "y": 0, "r": 1}),
        ("/v1/world/entities", {"min_x": 0, "min_y": 0, "max_x": 2**63, "max_y": "1e400"}),
        ("/v1/world/entities", {"x": 0, "y": 0, "r": 1, "limit": 0}),
        ("/v1/world/entities", {"x": 0, "y": 0}),
        ("/v1/world/path", {"x0": 0, "y0": 0, "x1": "1e400", "y1": 0}),
        ("/v1/world/path", {"x0": 0, "y0": 0, "x1": 1}),
    ],
)
async def test_bad_window_radius_and_path_input_is_a_problem(
    api: Api, route: str, params: dict[str, Any]
) -> None:
    r = await api.client.get(route, params=params, headers=api.player.headers)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"


async def test_a_bad_token_is_refused_before_the_query_is_read(api: Api) -> None:
    r = await api.client.get("/v1/world/nearest", params={"x": "\x00"})
    _problem(r, 401, "not_authenticated")
