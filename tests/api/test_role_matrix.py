"""Every faction and quest endpoint (and a character's quests and factions) for every role.

Players and admins read the world, only game masters change it, anonymous callers get 401. A
refused write is a 401/403 problem and leaves the row exactly as it was (checked by reading it
back as a GM before and after); the GM's same request then succeeds.
"""

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


@dataclass
class World:
    client: httpx.AsyncClient
    gm: ApiUser
    player: ApiUser
    admin: ApiUser
    ids: dict[str, int]

    async def call(
        self, method: str, url: str, headers: dict[str, str], body: Any = None
    ) -> httpx.Response:
        return await self.client.request(method, url, json=body, headers=headers)

    async def make(self, url: str, body: dict[str, Any], who: ApiUser | None = None) -> int:
        r = await self.call("POST", url, (who or self.gm).headers, body)
        assert r.status_code == 201, r.text
        return int(r.json()["id"])

    async def snapshot(self, url: str) -> tuple[int, Any]:
        r = await self.call("GET", url, self.gm.headers)
        return r.status_code, r.json()


@pytest.fixture
async def world(database: Database, clock: FrozenClock) -> AsyncIterator[World]:
    async with api_client(database, clock) as (client, runtime, _app):
        w = World(
            client,
            await make_user(runtime, "gamemaster", Role.GM),
            await make_user(runtime, "alice", Role.PLAYER),
            await make_user(runtime, "root", Role.ADMIN),
            {},
        )
        ids = w.ids
        ids["c"] = await w.make("/v1/characters", {"name": "Pip", "race": "elf"}, w.player)
        ids["c2"] = await w.make("/v1/characters", {"name": "Ada", "race": "elf"}, w.player)
        for name in ("f", "f2", "fdel", "fgone"):
            ids[name] = await w.make("/v1/factions", {"name": name})
        for name in ("q", "qdel", "qgone"):
            ids[name] = await w.make(
                "/v1/quests",
                {"title": name, "status": "available", "objectives": [{"id": "a"}]},
            )
        setup = [
            ("PUT", "/v1/factions/{f}/relations/{f2}", {"stance": "allied", "score": 50}, 200),
            ("POST", "/v1/quests/{q}/assignments", {"character_id": ids["c"]}, 201),
            ("DELETE", "/v1/factions/{fgone}", None, 204),
            ("DELETE", "/v1/quests/{qgone}", None, 204),
        ]
        for method, url, body, expected in setup:
            r = await w.call(method, url.format(**ids), w.gm.headers, body)
            assert r.status_code == expected, r.text
        yield w


READS = [
    "/v1/factions",
    "/v1/factions/{f}",
    "/v1/factions/{f}/members",
    "/v1/factions/{f}/relations",
    "/v1/factions/{f}/relations/{f2}",
    "/v1/quests",
    "/v1/quests/{q}",
    "/v1/quests/{q}/assignments",
    "/v1/characters/{c}/quests",
    "/v1/characters/{c}/factions",
]

# (method, url, body, the GM's status, the URL whose GM read must not change on a refusal)
WRITES: list[tuple[str, str, dict[str, Any] | None, int, str]] = [
    ("POST", "/v1/factions", {"name": "New"}, 201, "/v1/factions"),
    ("PATCH", "/v1/factions/{f}", {"description": "changed"}, 200, "/v1/factions/{f}"),
    ("POST", "/v1/factions/{f}/members", {"character_id": "c"}, 201, "/v1/factions/{f}/members"),
    ("DELETE", "/v1/factions/{f}/members/{c}", None, 204, "/v1/factions/{f}/members"),
    (
        "PUT",
        "/v1/factions/{f}/relations/{f2}",
        {"stance": "war", "score": -90},
        200,
        "/v1/factions/{f}/relations/{f2}",
    ),
    ("DELETE", "/v1/factions/{fdel}", None, 204, "/v1/factions/{fdel}"),
    ("POST", "/v1/factions/{fgone}/restore", None, 200, "/v1/factions/{fgone}"),
    ("POST", "/v1/quests", {"title": "New"}, 201, "/v1/quests"),
    ("PATCH", "/v1/quests/{q}", {"title": "changed"}, 200, "/v1/quests/{q}"),
    (
        "POST",
        "/v1/quests/{q}/assignments",
        {"character_id": "c2"},
        201,
        "/v1/quests/{q}/assignments",
    ),
    (
        "PATCH",
        "/v1/quests/{q}/assignments/{c}",
        {"progress": {"a": 1}},
        200,
        "/v1/quests/{q}/assignments",
    ),
    ("DELETE", "/v1/quests/{qdel}", None, 204, "/v1/quests/{qdel}"),
    ("POST", "/v1/quests/{qgone}/restore", None, 200, "/v1/quests/{qgone}"),
]


def _body(body: dict[str, Any] | None, ids: dict[str, int]) -> dict[str, Any] | None:
    """Fill `{"character_id": "c"}` placeholders with the world's ids."""
    if body is None:
        return None
    return {k: ids[v] if k == "character_id" else v for k, v in body.items()}


async def test_everyone_signed_in_reads_the_world_and_anonymous_gets_401(world: World) -> None:
    for template in READS:
        url = template.format(**world.ids)
        for who in (world.player, world.admin, world.gm):
            r = await world.call("GET", url, who.headers)
            assert r.status_code == 200, (url, who.actor.roles, r.text)
        anonymous = await world.call("GET", url, {})
        assert anonymous.status_code == 401, url
        assert anonymous.headers["content-type"] == "application/problem+json"


async def test_only_game_masters_write_and_refusals_change_nothing(world: World) -> None:
    refused = [(world.player, 403), (world.admin, 403), (None, 401)]
    for method, template, body, gm_status, witness_template in WRITES:
        url, witness = template.format(**world.ids), witness_template.format(**world.ids)
        data = _body(body, world.ids)
        before = await world.snapshot(witness)
        for who, expected in refused:
            r = await world.call(method, url, who.headers if who else {}, data)
            assert r.status_code == expected, (method, url, who and who.actor.roles, r.text)
            assert r.headers["content-type"] == "application/problem+json"
        assert await world.snapshot(witness) == before, (method, url)
        r = await world.call(method, url, world.gm.headers, data)
        assert r.status_code == gm_status, (method, url, r.text)
        assert await world.snapshot(witness) != before, (method, url)
