"""The character routes over HTTP: roles, ETags, problem+json errors, pagination."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.api import ApiUser, api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role
from visualdm.runtime import Runtime


@dataclass
class World:
    client: httpx.AsyncClient
    runtime: Runtime
    gm: ApiUser
    alice: ApiUser
    bob: ApiUser


@pytest.fixture
async def world(database: Database, clock: FrozenClock) -> AsyncIterator[World]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield World(
            client,
            runtime,
            await make_user(runtime, "gamemaster", Role.GM),
            await make_user(runtime, "alice", Role.PLAYER),
            await make_user(runtime, "bob", Role.PLAYER),
        )


async def _create(w: World, who: ApiUser, **body: object) -> dict[str, object]:
    r = await w.client.post(
        "/v1/characters", json={"name": "Aria", "race": "elf", **body}, headers=who.headers
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_create_then_read_with_etag_and_location(world: World) -> None:
    made = await _create(world, world.alice)
    r = await world.client.get(f"/v1/characters/{made['id']}", headers=world.bob.headers)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    assert r.json()["owner_id"] == world.alice.id
    again = await world.client.get(
        f"/v1/characters/{made['id']}", headers={**world.bob.headers, "If-None-Match": '"1"'}
    )
    assert again.status_code == 304
    assert again.content == b""


async def test_requests_without_a_valid_token_are_401_problems(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer nonsense"}, {"Authorization": "Basic x"}):
        r = await world.client.get("/v1/characters", headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["type"] == "urn:visualdm:problem:not_authenticated"
        assert r.headers["www-authenticate"] == "Bearer"


async def test_a_player_may_not_change_another_players_character(world: World) -> None:
    made = await _create(world, world.alice)
    r = await world.client.patch(
        f"/v1/characters/{made['id']}", json={"name": "Stolen"}, headers=world.bob.headers
    )
    assert r.status_code == 403
    assert r.json()["type"] == "urn:visualdm:problem:permission_denied"
    d = await world.client.delete(f"/v1/characters/{made['id']}", headers=world.bob.headers)
    assert d.status_code == 403
    still = await world.client.get(f"/v1/characters/{made['id']}", headers=world.gm.headers)
    assert still.json()["name"] == "Aria"


async def test_if_match_guards_updates_with_412_and_the_current_version(world: World) -> None:
    made = await _create(world, world.alice)
    url = f"/v1/characters/{made['id']}"
    ok = await world.client.patch(
        url, json={"wisdom": 12}, headers={**world.alice.headers, "If-Match": '"1"'}
    )
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"2"'
    stale = await world.client.patch(
        url, json={"wisdom": 13}, headers={**world.alice.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    body = stale.json()
    assert body["type"] == "urn:visualdm:problem:version_conflict"
    assert body["current_version"] == 2
    assert stale.headers["etag"] == '"2"'
    bad = await world.client.patch(
        url, json={"wisdom": 13}, headers={**world.alice.headers, "If-Match": "yesterday"}
    )
    assert bad.status_code == 422


async def test_bad_input_gets_422_problems_and_writes_nothing(world: World) -> None:
    for body in (
        {"name": "X", "race": "elf", "strength": -1},
        {"name": "X", "race": "elf", "unknown": True},
        {"name": "", "race": "elf"},
        {"race": "elf"},
    ):
        r = await world.client.post("/v1/characters", json=body, headers=world.alice.headers)
        assert r.status_code == 422, body
        assert r.headers["content-type"] == "application/problem+json"
    listed = await world.client.get("/v1/characters", headers=world.gm.headers)
    assert listed.json()["items"] == []
    missing = await world.client.get("/v1/characters/424242", headers=world.gm.headers)
    assert missing.status_code == 404


async def test_soft_delete_and_restore_over_http(world: World) -> None:
    made = await _create(world, world.alice)
    url = f"/v1/characters/{made['id']}"
    assert (await world.client.delete(url, headers=world.alice.headers)).status_code == 204
    assert (await world.client.get(url, headers=world.alice.headers)).status_code == 404
    restored = await world.client.post(f"{url}/restore", headers=world.alice.headers)
    assert restored.status_code == 200
    assert (await world.client.get(url, headers=world.alice.headers)).status_code == 200


async def test_pagination_follows_the_cursor(world: World) -> None:
    for i in range(5):
        await _create(world, world.alice, name=f"C{i}")
    seen, cursor = [], None
    while True:
        params: dict[str, str | int] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        r = await world.client.get("/v1/characters", params=params, headers=world.gm.headers)
        page = r.json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"C{i}" for i in range(5)]


async def test_position_updates_report_stale_ones(world: World, clock: FrozenClock) -> None:
    made = await _create(world, world.alice)
    url = f"/v1/characters/{made['id']}/position"
    now = clock.now().isoformat()
    first = await world.client.put(
        url, json={"x": 3, "y": 4, "at": now}, headers=world.alice.headers
    )
    assert first.json()["applied"] is True
    older = await world.client.put(
        url, json={"x": 9, "y": 9, "at": "2000-01-01T00:00:00Z"}, headers=world.alice.headers
    )
    assert older.status_code == 200
    assert older.json()["applied"] is False
    assert older.json()["position"]["x"] == 3
    nan = await world.client.put(
        url,
        content=b'{"x": NaN, "y": 1}',
        headers={**world.alice.headers, "content-type": "application/json"},
    )
    assert nan.status_code == 422


async def test_a_position_stamped_in_the_future_is_refused_and_cannot_freeze_the_character(
    world: World, clock: FrozenClock
) -> None:
    made = await _create(world, world.alice)
    url = f"/v1/characters/{made['id']}/position"
    frozen = await world.client.put(
        url, json={"x": 1, "y": 1, "at": "9999-12-31T00:00:00Z"}, headers=world.alice.headers
    )
    assert frozen.status_code == 422
    assert frozen.headers["content-type"] == "application/problem+json"
    later = await world.client.put(
        url, json={"x": 5, "y": 6}, headers=world.gm.headers
    )  # the GM's move, stamped now, still applies
    assert later.status_code == 200
    assert later.json()["applied"] is True
    assert later.json()["position"]["x"] == 5
