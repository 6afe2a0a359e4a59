"""The faction routes over HTTP: ETags, soft delete, hierarchy, membership, relations, limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import ApiUser, api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import MAX_REQUEST_BODY_BYTES, Role

PROBLEM = "application/problem+json"


@dataclass
class World:
    client: httpx.AsyncClient
    gm: ApiUser
    alice: ApiUser

    async def faction(self, name: str, **body: object) -> dict[str, Any]:
        r = await self.client.post(
            "/v1/factions", json={"name": name, **body}, headers=self.gm.headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def character(self, name: str) -> int:
        r = await self.client.post(
            "/v1/characters", json={"name": name, "race": "elf"}, headers=self.alice.headers
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])


@pytest.fixture
async def world(database: Database, clock: FrozenClock) -> AsyncIterator[World]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield World(
            client,
            await make_user(runtime, "gamemaster", Role.GM),
            await make_user(runtime, "alice", Role.PLAYER),
        )


async def test_create_read_etag_304_and_filtered_pages(world: World) -> None:
    crown = await world.faction("Crown")
    r = await world.client.get(f"/v1/factions/{crown['id']}", headers=world.alice.headers)
    assert r.status_code == 200
    assert r.headers["etag"] == '"1"'
    again = await world.client.get(
        f"/v1/factions/{crown['id']}", headers={**world.alice.headers, "If-None-Match": '"1"'}
    )
    assert again.status_code == 304
    assert again.content == b""
    for i in range(3):
        await world.faction(f"Watch {i}", parent_id=crown["id"])
    await world.faction("Guild")
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"parent_id": crown["id"], "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await world.client.get("/v1/factions", params=params, headers=world.gm.headers)
        body = page.json()
        seen += [f["name"] for f in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["Watch 0", "Watch 1", "Watch 2"]
    named = await world.client.get(
        "/v1/factions", params={"name_contains": "uil"}, headers=world.gm.headers
    )
    assert [f["name"] for f in named.json()["items"]] == ["Guild"]
    bad = await world.client.get("/v1/factions", params={"cursor": "x"}, headers=world.gm.headers)
    assert bad.status_code == 422


async def test_if_match_412_carries_the_current_version_and_changes_nothing(world: World) -> None:
    made = await world.faction("Crown")
    url = f"/v1/factions/{made['id']}"
    ok = await world.client.patch(
        url, json={"description": "v2"}, headers={**world.gm.headers, "If-Match": '"1"'}
    )
    assert ok.status_code == 200
    assert ok.headers["etag"] == '"2"'
    stale = await world.client.patch(
        url, json={"description": "v3"}, headers={**world.gm.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.headers["content-type"] == PROBLEM
    assert stale.json()["current_version"] == 2
    assert stale.headers["etag"] == '"2"'
    bad = await world.client.patch(
        url, json={"description": "v3"}, headers={**world.gm.headers, "If-Match": "soon"}
    )
    assert bad.status_code == 422
    now = await world.client.get(url, headers=world.gm.headers)
    assert now.json()["description"] == "v2"


async def test_a_cycle_is_422_and_an_unknown_parent_404(world: World) -> None:
    top = await world.faction("Top")
    mid = await world.faction("Mid", parent_id=top["id"])
    low = await world.faction("Low", parent_id=mid["id"])
    cycle = await world.client.patch(
        f"/v1/factions/{top['id']}", json={"parent_id": low["id"]}, headers=world.gm.headers
    )
    assert cycle.status_code == 422
    assert cycle.json()["type"] == "urn:visualdm:problem:rule_violation"
    itself = await world.client.patch(
        f"/v1/factions/{top['id']}", json={"parent_id": top["id"]}, headers=world.gm.headers
    )
    assert itself.status_code == 422
    still = await world.client.get(f"/v1/factions/{top['id']}", headers=world.gm.headers)
    assert still.json()["parent_id"] is None
    assert still.json()["version"] == 1
    orphan = await world.client.post(
        "/v1/factions", json={"name": "Orphan", "parent_id": 424242}, headers=world.gm.headers
    )
    assert orphan.status_code == 404


async def test_soft_delete_hides_and_restore_brings_back(world: World) -> None:
    made = await world.faction("Crown")
    url = f"/v1/factions/{made['id']}"
    assert (await world.client.delete(url, headers=world.gm.headers)).status_code == 204
    assert (await world.client.get(url, headers=world.gm.headers)).status_code == 404
    assert (await world.client.delete(url, headers=world.gm.headers)).status_code == 404
    listed = await world.client.get("/v1/factions", headers=world.gm.headers)
    assert listed.json()["items"] == []
    restored = await world.client.post(f"{url}/restore", headers=world.gm.headers)
    assert restored.status_code == 200
    assert restored.json()["name"] == "Crown"
    again = await world.client.post(f"{url}/restore", headers=world.gm.headers)
    assert again.status_code == 404
    assert (await world.client.get(url, headers=world.gm.headers)).status_code == 200


async def test_membership_join_duplicate_list_and_leave(world: World) -> None:
    guild = await world.faction("Guild")
    hero = await world.character("Pip")
    url = f"/v1/factions/{guild['id']}/members"
    joined = await world.client.post(
        url, json={"character_id": hero, "rank": "cutpurse"}, headers=world.gm.headers
    )
    assert joined.status_code == 201
    assert joined.json()["rank"] == "cutpurse"
    twice = await world.client.post(url, json={"character_id": hero}, headers=world.gm.headers)
    assert twice.status_code == 409
    assert twice.headers["content-type"] == PROBLEM
    ghost = await world.client.post(url, json={"character_id": 999}, headers=world.gm.headers)
    assert ghost.status_code == 404
    nowhere = await world.client.post(
        "/v1/factions/999/members", json={"character_id": hero}, headers=world.gm.headers
    )
    assert nowhere.status_code == 404
    members = await world.client.get(url, headers=world.alice.headers)
    assert [m["character_id"] for m in members.json()["items"]] == [hero]
    mine = await world.client.get(f"/v1/characters/{hero}/factions", headers=world.alice.headers)
    assert [m["faction_id"] for m in mine.json()] == [guild["id"]]
    left = await world.client.delete(f"{url}/{hero}", headers=world.gm.headers)
    assert left.status_code == 204
    gone = await world.client.delete(f"{url}/{hero}", headers=world.gm.headers)
    assert gone.status_code == 404
    assert (await world.client.get(url, headers=world.gm.headers)).json()["items"] == []
    unknown = await world.client.get("/v1/characters/999/factions", headers=world.gm.headers)
    assert unknown.status_code == 404


async def test_relations_are_symmetric_and_validated(world: World) -> None:
    watch = await world.faction("Watch")
    guild = await world.faction("Guild")
    a, b = watch["id"], guild["id"]
    unset = await world.client.get(f"/v1/factions/{a}/relations/{b}", headers=world.gm.headers)
    assert unset.status_code == 404
    put = await world.client.put(
        f"/v1/factions/{a}/relations/{b}",
        json={"stance": "hostile", "score": -70},
        headers=world.gm.headers,
    )
    assert put.status_code == 200
    assert put.json() == {**put.json(), "faction_id": a, "other_id": b, "score": -70}
    other_side = await world.client.get(
        f"/v1/factions/{b}/relations/{a}", headers=world.alice.headers
    )
    assert other_side.json()["stance"] == "hostile"
    assert other_side.json()["other_id"] == a
    listed = await world.client.get(f"/v1/factions/{b}/relations", headers=world.gm.headers)
    assert [r["other_id"] for r in listed.json()] == [a]
    for body in (
        {"stance": "hostile", "score": 101},
        {"stance": "grumpy", "score": 0},
        {"stance": "war", "score": -5, "extra": 1},
    ):
        bad = await world.client.put(
            f"/v1/factions/{a}/relations/{b}", json=body, headers=world.gm.headers
        )
        assert bad.status_code == 422, body
    itself = await world.client.put(
        f"/v1/factions/{a}/relations/{a}",
        json={"stance": "war", "score": 0},
        headers=world.gm.headers,
    )
    assert itself.status_code == 422
    missing = await world.client.put(
        f"/v1/factions/{a}/relations/999",
        json={"stance": "war", "score": 0},
        headers=world.gm.headers,
    )
    assert missing.status_code == 404
    kept = await world.client.get(f"/v1/factions/{a}/relations/{b}", headers=world.gm.headers)
    assert (kept.json()["stance"], kept.json()["score"]) == ("hostile", -70)


async def test_unknown_fields_and_out_of_range_ids_are_422(world: World) -> None:
    made = await world.faction("Crown")
    extra = await world.client.post(
        "/v1/factions", json={"name": "X", "colour": "red"}, headers=world.gm.headers
    )
    assert extra.status_code == 422
    assert extra.headers["content-type"] == PROBLEM
    patch = await world.client.patch(
        f"/v1/factions/{made['id']}", json={"colour": "red"}, headers=world.gm.headers
    )
    assert patch.status_code == 422
    largest = await world.client.get(f"/v1/factions/{2**63 - 1}", headers=world.gm.headers)
    assert largest.status_code == 404
    for bad_id in (2**63, 0, -1):
        r = await world.client.get(f"/v1/factions/{bad_id}", headers=world.gm.headers)
        assert r.status_code == 422, bad_id
    listed = await world.client.get("/v1/factions", headers=world.gm.headers)
    assert [f["name"] for f in listed.json()["items"]] == ["Crown"]


async def test_an_oversized_body_is_413_declared_or_streamed(world: World) -> None:
    huge = b'{"name": "X", "description": "' + b"a" * MAX_REQUEST_BODY_BYTES + b'"}'
    declared = await world.client.post(
        "/v1/factions",
        content=huge,
        headers={**world.gm.headers, "content-type": "application/json"},
    )
    assert declared.status_code == 413
    assert declared.headers["content-type"] == PROBLEM
    assert declared.json()["status"] == 413

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(huge), 4096):
            yield huge[start : start + 4096]

    streamed = await world.client.post(
        "/v1/factions",
        content=chunks(),
        headers={**world.gm.headers, "content-type": "application/json"},
    )
    assert streamed.status_code == 413
    assert streamed.json()["type"] == "urn:visualdm:problem:content_too_large"
    listed = await world.client.get("/v1/factions", headers=world.gm.headers)
    assert listed.json()["items"] == []
