"""The assignment queue over HTTP: 202 with a status link, FIFO outcomes, polling."""

from __future__ import annotations

import httpx

from tests.support.api import api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role


async def _post(client: httpx.AsyncClient, url: str, body: object, headers: dict[str, str]) -> dict:  # type: ignore[type-arg]
    r = await client.post(url, json=body, headers=headers)
    assert r.status_code in (201, 202), r.text
    return dict(r.json())


async def test_requests_are_applied_first_come_first_served(
    database: Database, clock: FrozenClock
) -> None:
    async with api_client(database, clock) as (client, runtime, _app):
        gm = await make_user(runtime, "gamemaster", Role.GM)
        player = await make_user(runtime, "player1", Role.PLAYER)
        quest = await _post(
            client, "/v1/quests",
            {"title": "One seat", "status": "available", "max_assignees": 1}, gm.headers,
        )  # fmt: skip
        heroes = [
            await _post(client, "/v1/characters", {"name": f"H{i}", "race": "elf"}, gm.headers)
            for i in range(2)
        ]
        url = f"/v1/quests/{quest['id']}/assignment-requests"
        first = await client.post(url, json={"character_id": heroes[0]["id"]}, headers=gm.headers)
        second = await client.post(url, json={"character_id": heroes[1]["id"]}, headers=gm.headers)
        assert first.status_code == second.status_code == 202
        assert first.json()["status"] == "applied"
        assert second.json()["status"] == "rejected"
        assert "full" in second.json()["outcome"]
        polled = await client.get(second.headers["location"], headers=player.headers)
        assert polled.status_code == 200
        assert polled.json() == second.json()
        refused = await client.post(
            url, json={"character_id": heroes[1]["id"]}, headers=player.headers
        )
        assert refused.status_code == 403
        missing = await client.post(
            "/v1/quests/999999/assignment-requests", json={"character_id": heroes[0]["id"]},
            headers=gm.headers,
        )  # fmt: skip
        assert missing.status_code == 404
        unknown = await client.get("/v1/assignment-requests/999999", headers=gm.headers)
        assert unknown.status_code == 404
