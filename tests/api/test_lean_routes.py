"""The character read's lean route: same answers as the documented FastAPI route, ids checked
the same way, metrics under the same template; what it does not match falls through."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Route

from tests.support.api import ApiUser, api_client, make_user
from visualdm.api.limits import ID_MAX
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role
from visualdm.runtime import Runtime

Api = tuple[httpx.AsyncClient, Runtime, FastAPI, ApiUser]


@pytest.fixture
async def api(database: Database, clock: FrozenClock) -> AsyncIterator[Api]:
    async with api_client(database, clock) as (client, runtime, app):
        yield client, runtime, app, await make_user(runtime, "alice", Role.PLAYER)


async def _character(client: httpx.AsyncClient, user: ApiUser) -> int:
    r = await client.post(
        "/v1/characters", json={"name": "Ayla", "race": "elf"}, headers=user.headers
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _problem(r: httpx.Response, status: int, kind: str) -> dict[str, object]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = dict(r.json())
    assert str(body["type"]).endswith(kind)
    return body


async def test_the_lean_route_is_first_and_answers_the_read(api: Api) -> None:
    client, _runtime, app, alice = api
    first = app.router.routes[0]
    assert isinstance(first, Route)
    assert first.path == "/v1/characters/{character_id:decimal}"
    cid = await _character(client, alice)
    got = await client.get(f"/v1/characters/{cid}", headers=alice.headers)
    assert got.status_code == 200
    assert got.json()["name"] == "Ayla"
    assert got.headers["etag"] == '"1"'
    assert got.headers["ratelimit-limit"] == "100"
    # Only the lean route answers HEAD (FastAPI's GET routes refuse it with 405).
    head = await client.head(f"/v1/characters/{cid}", headers=alice.headers)
    assert (head.status_code, head.headers["etag"], head.content) == (200, '"1"', b"")


async def test_errors_are_the_apps_problems(api: Api) -> None:
    client, _runtime, _app, alice = api
    _problem(await client.get("/v1/characters/1"), 401, "not_authenticated")
    _problem(await client.get("/v1/characters/999", headers=alice.headers), 404, "not_found")


@pytest.mark.parametrize("raw", ["0", str(ID_MAX + 1), "99999999999999999999999"])
async def test_out_of_range_ids_are_422_like_the_documented_route(api: Api, raw: str) -> None:
    client, _runtime, _app, alice = api
    lean = _problem(
        await client.get(f"/v1/characters/{raw}", headers=alice.headers), 422, "validation_error"
    )
    # A non-number is not the lean route's: FastAPI's route answers it, located the same way.
    fastapi = _problem(
        await client.get("/v1/characters/x1", headers=alice.headers), 422, "validation_error"
    )
    locations = [[e["loc"] for e in body["errors"]] for body in (lean, fastapi)]  # type: ignore[attr-defined]
    assert locations == [[["path", "character_id"]], [["path", "character_id"]]]


async def test_the_largest_id_is_a_valid_id(api: Api) -> None:
    client, _runtime, _app, alice = api
    _problem(await client.get(f"/v1/characters/{ID_MAX}", headers=alice.headers), 404, "not_found")


async def test_metrics_name_the_documented_template(api: Api) -> None:
    client, _runtime, _app, alice = api
    cid = await _character(client, alice)
    assert (await client.get(f"/v1/characters/{cid}", headers=alice.headers)).status_code == 200
    text = (await client.get("/metrics")).text
    assert 'route="/v1/characters/{character_id}",status="200"' in text
