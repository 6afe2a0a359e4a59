"""Accounts over HTTP: admin reads and changes, deletion, self-service export and deletion."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.accounts import account, audit_entries, log_in
from tests.support.api import ApiUser, api_client, make_user
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.factions import service as factions
from visualdm.factions.schemas import FactionCreate
from visualdm.ownership import Role
from visualdm.quests import service as quests
from visualdm.quests.schemas import QuestCreate
from visualdm.runtime import Runtime


@dataclass
class World:
    client: httpx.AsyncClient
    runtime: Runtime
    admin: ApiUser
    gm: ApiUser
    alice: ApiUser
    bob: ApiUser

    async def me_status(self, who: ApiUser) -> int:
        return (await self.client.get("/v1/auth/me", headers=who.headers)).status_code


@pytest.fixture
async def world(database: Database, clock: FrozenClock) -> AsyncIterator[World]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield World(
            client,
            runtime,
            await make_user(runtime, "root", Role.ADMIN),
            await make_user(runtime, "gamemaster", Role.GM),
            await make_user(runtime, "alice", Role.PLAYER),
            await make_user(runtime, "bob", Role.PLAYER),
        )


def _problem(r: httpx.Response, status: int, code: str) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["type"] == f"urn:visualdm:problem:{code}"


async def test_account_routes_by_role(world: World) -> None:
    c, alice = world.client, world.alice
    url = f"/v1/users/{alice.id}"
    for who in (world.admin, alice):  # admins read anyone; everyone reads themselves
        r = await c.get(url, headers=who.headers)
        assert r.status_code == 200
        assert r.json()["username"] == "alice"
        assert "password_hash" not in r.json()
    for who in (world.gm, world.bob):
        _problem(await c.get(url, headers=who.headers), 403, "permission_denied")
        patch = await c.patch(url, json={"is_active": False}, headers=who.headers)
        _problem(patch, 403, "permission_denied")
        _problem(await c.delete(url, headers=who.headers), 403, "permission_denied")
        restore = await c.post(f"{url}/restore", headers=who.headers)
        _problem(restore, 403, "permission_denied")
    for method, path in (
        ("GET", url),
        ("PATCH", url),
        ("DELETE", url),
        ("POST", f"{url}/restore"),
        ("GET", "/v1/users/me/export"),
        ("DELETE", "/v1/users/me"),
    ):
        r = await c.request(method, path, json={} if method == "PATCH" else None)
        _problem(r, 401, "not_authenticated")
    assert await world.me_status(alice) == 200  # none of the refusals touched her session
    _problem(await c.get("/v1/users/424242", headers=world.admin.headers), 404, "not_found")


async def test_an_admin_read_of_another_account_is_audited(world: World) -> None:
    await world.client.get(f"/v1/users/{world.alice.id}", headers=world.admin.headers)
    await world.client.get(f"/v1/users/{world.alice.id}", headers=world.alice.headers)
    reads = await audit_entries(world.runtime, "read")
    assert [(e.actor_user_id, e.entity_id) for e in reads] == [
        (world.admin.id, str(world.alice.id))
    ]


async def test_a_role_change_revokes_the_users_tokens(world: World) -> None:
    url = f"/v1/users/{world.alice.id}"
    r = await world.client.patch(url, json={"roles": ["gm"]}, headers=world.admin.headers)
    assert r.status_code == 200, r.text
    assert r.json()["roles"] == ["gm"]
    _problem(
        await world.client.get("/v1/auth/me", headers=world.alice.headers), 401, "not_authenticated"
    )
    assert await world.me_status(world.bob) == 200
    bad = await world.client.patch(url, json={"roles": ["wizard"]}, headers=world.admin.headers)
    _problem(bad, 422, "validation_error")
    empty = await world.client.patch(url, json={"roles": []}, headers=world.admin.headers)
    _problem(empty, 422, "validation_error")


async def test_deactivation_revokes_tokens_and_refuses_logins(world: World) -> None:
    c = world.client
    frodo = await account(c, world.runtime, "frodo")
    url = f"/v1/users/{frodo.id}"
    r = await c.patch(url, json={"is_active": False}, headers=world.admin.headers)
    assert r.json()["is_active"] is False
    assert (await c.get("/v1/auth/me", headers=frodo.headers)).status_code == 401
    assert (await log_in(c, "frodo")).status_code == 401
    await c.patch(url, json={"is_active": True}, headers=world.admin.headers)
    assert (await log_in(c, "frodo")).status_code == 200


async def test_an_admin_may_not_demote_or_disable_itself(world: World) -> None:
    url = f"/v1/users/{world.admin.id}"
    for body in ({"is_active": False}, {"roles": ["player"]}):
        r = await world.client.patch(url, json=body, headers=world.admin.headers)
        _problem(r, 422, "rule_violation")
    assert await world.me_status(world.admin) == 200


async def test_deleting_an_account_revokes_its_tokens_and_hides_it(world: World) -> None:
    c, admin = world.client, world.admin
    url = f"/v1/users/{world.bob.id}"
    assert (await c.delete(url, headers=admin.headers)).status_code == 204
    assert await world.me_status(world.bob) == 401
    _problem(await c.get(url, headers=admin.headers), 404, "not_found")
    kept = await c.get(url, params={"include_deleted": "true"}, headers=admin.headers)
    assert kept.json()["deleted_at"] is not None
    _problem(await c.delete(url, headers=admin.headers), 404, "not_found")
    restored = await c.post(f"{url}/restore", headers=admin.headers)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    (entry,) = await audit_entries(world.runtime, "delete")
    assert entry.actor_user_id == admin.id


async def test_players_delete_their_own_account_and_its_sessions_end(world: World) -> None:
    c = world.client
    sam = await account(c, world.runtime, "samwise")
    assert (await c.delete("/v1/users/me", headers=sam.headers)).status_code == 204
    assert (await c.get("/v1/auth/me", headers=sam.headers)).status_code == 401
    assert (await log_in(c, "samwise")).status_code == 401
    r = await c.get(f"/v1/users/{sam.id}", headers=world.admin.headers)
    _problem(r, 404, "not_found")
    own = await c.delete(f"/v1/users/{world.alice.id}", headers=world.alice.headers)
    assert own.status_code == 204  # the same, by id


async def test_the_export_holds_every_section_of_the_users_data(world: World) -> None:
    c, alice, rt = world.client, world.alice, world.runtime
    made = await c.post(
        "/v1/characters", json={"name": "Aria", "race": "elf"}, headers=alice.headers
    )
    other = await c.post(
        "/v1/characters", json={"name": "Bo", "race": "orc"}, headers=world.bob.headers
    )
    char_id = made.json()["id"]
    assert other.status_code == 201
    async with rt.uow() as u:
        faction = await factions.create_faction(
            u, actor=world.gm.actor, data=FactionCreate(name="Harpers")
        )
        await factions.join_faction(
            u, actor=world.gm.actor, faction_id=faction.id, character_id=char_id
        )
        quest = await quests.create_quest(
            u, actor=world.gm.actor, data=QuestCreate(title="Find the map", status="available")
        )
    async with rt.uow() as u:
        await quests.assign_quest(u, actor=world.gm.actor, quest_id=quest.id, character_id=char_id)
    r = await c.get("/v1/users/me/export", headers=alice.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["account"]["id"] == alice.id
    assert [ch["name"] for ch in body["sections"]["characters"]] == ["Aria"]
    assert [m["faction_id"] for m in body["sections"]["faction_memberships"]] == [faction.id]
    assert [a["quest_id"] for a in body["sections"]["quest_assignments"]] == [quest.id]
    assert any(e["action"] == "create" and e["entity"] == "character" for e in body["audit"])
    empty = (await c.get("/v1/users/me/export", headers=world.admin.headers)).json()
    assert empty["sections"] == {
        "characters": [],
        "faction_memberships": [],
        "quest_assignments": [],
    }
