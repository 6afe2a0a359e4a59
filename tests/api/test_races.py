"""Real races over HTTP: simultaneous writes of one row end as 2xx, 404, 409 or 412, never 5xx.

The requests run at once on their own connections (each unit of work takes one from the pool),
so on PostgreSQL they really meet in the database, not in a pre-checked version.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.api import ApiUser, api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role

RACERS = 6


@dataclass
class Arena:
    client: httpx.AsyncClient
    gm: ApiUser

    async def make(self, kind: str) -> str:
        body = {
            "characters": {"name": "Contested", "race": "elf"},
            "factions": {"name": "Contested guild"},
            "quests": {"title": "Contested quest"},
        }[kind]
        r = await self.client.post(f"/v1/{kind}", json=body, headers=self.gm.headers)
        assert r.status_code == 201, r.text
        return f"/v1/{kind}/{r.json()['id']}"

    def patch_body(self, kind: str, n: int) -> dict[str, object]:
        return {
            "characters": {"gold": n},
            "factions": {"description": f"take {n}"},
            "quests": {"description": f"take {n}"},
        }[kind]

    async def at_once(self, *calls: object) -> list[httpx.Response]:
        return list(await asyncio.gather(*calls))  # type: ignore[call-overload]


@pytest.fixture
async def arena(database: Database, clock: FrozenClock) -> AsyncIterator[Arena]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield Arena(client, await make_user(runtime, "referee", Role.GM))


KINDS = ["characters", "factions", "quests"]


def _statuses(responses: list[httpx.Response]) -> Counter[int]:
    for r in responses:
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", r.text
    return Counter(r.status_code for r in responses)


@pytest.mark.parametrize("kind", KINDS)
async def test_patches_with_one_if_match_give_one_winner_and_412s(arena: Arena, kind: str) -> None:
    url = await arena.make(kind)
    headers = {**arena.gm.headers, "If-Match": '"1"'}
    responses = await arena.at_once(
        *(
            arena.client.patch(url, json=arena.patch_body(kind, n), headers=headers)
            for n in range(RACERS)
        )
    )
    assert _statuses(responses) == {200: 1, 412: RACERS - 1}
    losers = [r.json() for r in responses if r.status_code == 412]
    assert all(body["current_version"] == 2 for body in losers)
    final = await arena.client.get(url, headers=arena.gm.headers)
    assert final.json()["version"] == 2


@pytest.mark.parametrize("kind", KINDS)
async def test_patches_without_if_match_succeed_or_conflict_never_fail(
    arena: Arena, kind: str
) -> None:
    url = await arena.make(kind)
    responses = await arena.at_once(
        *(
            arena.client.patch(url, json=arena.patch_body(kind, n), headers=arena.gm.headers)
            for n in range(RACERS)
        )
    )
    statuses = _statuses(responses)
    assert set(statuses) <= {200, 409}, statuses
    final = await arena.client.get(url, headers=arena.gm.headers)
    # Every success bumped the version exactly once: no write was lost or doubled.
    assert final.json()["version"] == 1 + statuses[200]


async def test_character_patches_without_if_match_are_retried_until_they_store(
    arena: Arena,
) -> None:
    url = await arena.make("characters")
    responses = await arena.at_once(
        *(arena.client.patch(url, json={"gold": n}, headers=arena.gm.headers) for n in range(4))
    )
    assert _statuses(responses) == {200: 4}
    final = await arena.client.get(url, headers=arena.gm.headers)
    assert final.json()["version"] == 5
    assert final.json()["gold"] in {0, 1, 2, 3}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_delete_racing_updates_ends_cleanly(arena: Arena, kind: str) -> None:
    url = await arena.make(kind)
    calls = [
        arena.client.patch(url, json=arena.patch_body(kind, n), headers=arena.gm.headers)
        for n in range(RACERS - 1)
    ]
    calls.insert(RACERS // 2, arena.client.delete(url, headers=arena.gm.headers))
    responses = await arena.at_once(*calls)
    deleted = responses[RACERS // 2]
    updates = responses[: RACERS // 2] + responses[RACERS // 2 + 1 :]
    assert deleted.status_code in {204, 409}, deleted.text
    assert set(_statuses(updates)) <= {200, 404, 409}
    after = await arena.client.get(url, headers=arena.gm.headers)
    assert after.status_code == (404 if deleted.status_code == 204 else 200)


@pytest.mark.parametrize("kind", KINDS)
async def test_racing_deletes_delete_once(arena: Arena, kind: str) -> None:
    url = await arena.make(kind)
    responses = await arena.at_once(
        *(arena.client.delete(url, headers=arena.gm.headers) for _ in range(RACERS))
    )
    statuses = _statuses(responses)
    assert statuses[204] == 1, statuses
    assert set(statuses) <= {204, 404, 409}


async def _assignment(arena: Arena) -> tuple[str, str]:
    quest = await arena.client.post(
        "/v1/quests",
        json={"title": "Rats", "status": "available", "objectives": [{"id": "rats", "target": 9}]},
        headers=arena.gm.headers,
    )
    assert quest.status_code == 201, quest.text
    hero = await arena.client.post(
        "/v1/characters", json={"name": "Hero", "race": "elf"}, headers=arena.gm.headers
    )
    url = f"/v1/quests/{quest.json()['id']}/assignments"
    given = await arena.client.post(
        url, json={"character_id": hero.json()["id"]}, headers=arena.gm.headers
    )
    assert given.status_code == 201, given.text
    return url, f"{url}/{hero.json()['id']}"


async def test_racing_progress_updates_of_one_assignment_never_fail(arena: Arena) -> None:
    listing, url = await _assignment(arena)
    responses = await arena.at_once(
        *(
            arena.client.patch(url, json={"progress": {"rats": n}}, headers=arena.gm.headers)
            for n in range(1, RACERS + 1)
        )
    )
    statuses = _statuses(responses)
    assert set(statuses) <= {200, 409}, statuses
    assert statuses[200] >= 1
    stored = (await arena.client.get(listing, headers=arena.gm.headers)).json()[0]
    assert stored["version"] == 1 + statuses[200]  # each success stored exactly once
    winners = {r.json()["progress"]["rats"] for r in responses if r.status_code == 200}
    assert stored["progress"]["rats"] in winners


async def test_racing_closes_of_one_assignment_close_it_once(arena: Arena) -> None:
    listing, url = await _assignment(arena)
    closes = ["failed", "abandoned"] * (RACERS // 2)
    responses = await arena.at_once(
        *(arena.client.patch(url, json={"status": s}, headers=arena.gm.headers) for s in closes)
    )
    statuses = _statuses(responses)
    assert statuses[200] == 1, statuses
    assert set(statuses) <= {200, 409}
    stored = (await arena.client.get(listing, headers=arena.gm.headers)).json()[0]
    winner = next(r.json() for r in responses if r.status_code == 200)
    assert stored["status"] == winner["status"]


@pytest.mark.parametrize("kind", KINDS)
async def test_racing_restores_restore_once(arena: Arena, kind: str) -> None:
    url = await arena.make(kind)
    assert (await arena.client.delete(url, headers=arena.gm.headers)).status_code == 204
    responses = await arena.at_once(
        *(arena.client.post(f"{url}/restore", headers=arena.gm.headers) for _ in range(RACERS))
    )
    statuses = _statuses(responses)
    assert statuses[200] == 1, statuses
    assert set(statuses) <= {200, 404, 409}
    after = await arena.client.get(url, headers=arena.gm.headers)
    assert after.json()["version"] == 3  # created, deleted, restored: once each
