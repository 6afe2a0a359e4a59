"""The quest routes over HTTP: drafts, lifecycle, ETags, assignments, progress and rewards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.support.api import ApiUser, api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role

PROBLEM = "application/problem+json"


@dataclass
class World:
    client: httpx.AsyncClient
    gm: ApiUser
    alice: ApiUser

    async def quest(self, **body: object) -> dict[str, Any]:
        r = await self.client.post(
            "/v1/quests", json={"title": "Rats", **body}, headers=self.gm.headers
        )
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def character(self, name: str = "Pip") -> int:
        r = await self.client.post(
            "/v1/characters", json={"name": name, "race": "elf"}, headers=self.alice.headers
        )
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def patch(self, url: str, body: dict[str, Any]) -> httpx.Response:
        return await self.client.patch(url, json=body, headers=self.gm.headers)


@pytest.fixture
async def world(database: Database, clock: FrozenClock) -> AsyncIterator[World]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield World(
            client,
            await make_user(runtime, "gamemaster", Role.GM),
            await make_user(runtime, "alice", Role.PLAYER),
        )


async def test_drafts_are_hidden_from_players_until_available(world: World) -> None:
    draft = await world.quest(title="Secret")
    url = f"/v1/quests/{draft['id']}"
    assert (await world.client.get(url, headers=world.alice.headers)).status_code == 404
    assert (await world.client.get(url, headers=world.gm.headers)).status_code == 200
    listed = await world.client.get("/v1/quests", headers=world.alice.headers)
    assert listed.json()["items"] == []
    opened = await world.patch(url, {"status": "available"})
    assert opened.status_code == 200
    seen = await world.client.get(url, headers=world.alice.headers)
    assert seen.status_code == 200
    cached = await world.client.get(
        url, headers={**world.alice.headers, "If-None-Match": seen.headers["etag"]}
    )
    assert cached.status_code == 304
    by_status = await world.client.get(
        "/v1/quests", params={"status": "available"}, headers=world.alice.headers
    )
    assert [q["title"] for q in by_status.json()["items"]] == ["Secret"]
    bogus = await world.client.get(
        "/v1/quests", params={"status": "lost"}, headers=world.alice.headers
    )
    assert bogus.status_code == 422


async def test_lifecycle_conflicts_stale_if_match_and_soft_delete(world: World) -> None:
    made = await world.quest(status="available")
    url = f"/v1/quests/{made['id']}"
    back = await world.patch(url, {"status": "draft"})
    assert back.status_code == 409
    assert back.headers["content-type"] == PROBLEM
    ok = await world.client.patch(
        url, json={"title": "Big rats"}, headers={**world.gm.headers, "If-Match": '"1"'}
    )
    assert ok.status_code == 200
    stale = await world.client.patch(
        url, json={"title": "Huge rats"}, headers={**world.gm.headers, "If-Match": '"1"'}
    )
    assert stale.status_code == 412
    assert stale.json()["current_version"] == ok.json()["version"]
    assert (await world.patch(url, {"status": "lost"})).status_code == 422
    assert (await world.patch(url, {"reward": 1})).status_code == 422
    assert (await world.client.get(url, headers=world.gm.headers)).json()["title"] == "Big rats"
    assert (await world.client.delete(url, headers=world.gm.headers)).status_code == 204
    assert (await world.client.get(url, headers=world.gm.headers)).status_code == 404
    restored = await world.client.post(f"{url}/restore", headers=world.gm.headers)
    assert restored.status_code == 200
    assert restored.json()["status"] == "available"
    unknown = await world.client.post("/v1/quests/999/restore", headers=world.gm.headers)
    assert unknown.status_code == 404
    ghost = await world.client.post(
        "/v1/quests",
        json={"title": "X", "requirements": {"factions": [999]}},
        headers=world.gm.headers,
    )
    assert ghost.status_code == 422


async def test_assignment_progress_completion_grants_rewards(world: World) -> None:
    guild = await world.client.post(
        "/v1/factions", json={"name": "Guild"}, headers=world.gm.headers
    )
    guild_id = guild.json()["id"]
    made = await world.quest(
        status="available",
        objectives=[{"id": "rats", "target": 3}],
        rewards={"xp": 50, "gold": 7, "faction_standing": [{"faction_id": guild_id, "delta": 5}]},
    )
    hero = await world.character()
    url = f"/v1/quests/{made['id']}/assignments"
    given = await world.client.post(url, json={"character_id": hero}, headers=world.gm.headers)
    assert given.status_code == 201
    assert given.json()["status"] == "assigned"
    twice = await world.client.post(url, json={"character_id": hero}, headers=world.gm.headers)
    assert twice.status_code == 409
    nobody = await world.client.post(url, json={"character_id": 999}, headers=world.gm.headers)
    assert nobody.status_code == 404
    mine = f"{url}/{hero}"
    early = await world.patch(mine, {"status": "completed"})
    assert early.status_code == 422
    for body in ({"progress": {"rats": 4}}, {"progress": {"wolves": 1}}, {}, {"status": "x"}):
        assert (await world.patch(mine, body)).status_code == 422, body
    assert (await world.patch(mine, {"status": "assigned"})).status_code == 422
    half = await world.patch(mine, {"progress": {"rats": 2}})
    assert half.status_code == 200
    assert (half.json()["status"], half.json()["progress"]) == ("in_progress", {"rats": 2})
    done = await world.patch(mine, {"progress": {"rats": 3}, "status": "completed"})
    assert done.status_code == 200
    assert done.json()["status"] == "completed"
    hero_now = await world.client.get(f"/v1/characters/{hero}", headers=world.alice.headers)
    assert (hero_now.json()["xp"], hero_now.json()["gold"]) == (50, 7)
    standing = await world.client.get(f"/v1/characters/{hero}/factions", headers=world.gm.headers)
    assert [(m["faction_id"], m["standing"]) for m in standing.json()] == [(guild_id, 5)]
    again = await world.patch(mine, {"status": "completed"})
    assert again.status_code == 409
    assert (again.json()["status"], again.json()["entity_status"]) == (409, "completed")
    hero_after = await world.client.get(f"/v1/characters/{hero}", headers=world.alice.headers)
    assert hero_after.json()["xp"] == 50
    listed = await world.client.get(url, headers=world.alice.headers)
    assert [a["character_id"] for a in listed.json()] == [hero]
    quests_of = await world.client.get(f"/v1/characters/{hero}/quests", headers=world.gm.headers)
    assert [(a["quest_id"], a["status"]) for a in quests_of.json()] == [(made["id"], "completed")]


async def test_fail_and_abandon_close_an_assignment_and_free_its_slot(world: World) -> None:
    made = await world.quest(status="available", max_assignees=1)
    url = f"/v1/quests/{made['id']}/assignments"
    first, second = await world.character("A"), await world.character("B")
    assert (
        await world.client.post(url, json={"character_id": first}, headers=world.gm.headers)
    ).status_code == 201
    full = await world.client.post(url, json={"character_id": second}, headers=world.gm.headers)
    assert full.status_code == 409
    assert (await world.patch(f"{url}/{first}", {"status": "abandoned"})).json()["status"] == (
        "abandoned"
    )
    assert (await world.patch(f"{url}/{first}", {"status": "failed"})).status_code == 409
    taken = await world.client.post(url, json={"character_id": second}, headers=world.gm.headers)
    assert taken.status_code == 201
    failed = await world.patch(f"{url}/{second}", {"status": "failed"})
    assert failed.json()["status"] == "failed"
    missing = await world.patch(f"{url}/999", {"status": "failed"})
    assert missing.status_code == 404
    draft = await world.quest(title="Not yet")
    closed = await world.client.post(
        f"/v1/quests/{draft['id']}/assignments",
        json={"character_id": first},
        headers=world.gm.headers,
    )
    assert closed.status_code == 409
    assert (
        await world.client.get("/v1/quests/999/assignments", headers=world.gm.headers)
    ).status_code == 404
