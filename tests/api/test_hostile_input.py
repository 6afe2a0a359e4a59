"""What a hostile client sent (issue 13, item 4), sent again: each is a 4xx problem, and nothing
is written. Every test runs on SQLite and PostgreSQL (which refuses NUL, out-of-range integers
and infinities where SQLite stores them)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from tests.support.accounts import audit_entries, create_account, log_in
from tests.support.api import ApiUser, api_client, make_user
from visualdm.audit.models import AuditEntry
from visualdm.characters.models import Character
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.factions.models import Faction
from visualdm.ownership import LOGIN_THROTTLE_ACCOUNT, Role
from visualdm.quests.models import Quest
from visualdm.runtime import Runtime
from visualdm.spatial.models import WorldEntity
from visualdm.users.models import User

JSON = {"content-type": "application/json"}


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    gm: ApiUser


@pytest.fixture
async def api(database: Database, clock: FrozenClock) -> AsyncIterator[Api]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield Api(client, runtime, await make_user(runtime, "gamemaster", Role.GM))


async def _stored(runtime: Runtime) -> dict[str, int]:
    """Row counts of what a write could touch, and the characters' summed versions."""
    async with runtime.uow() as uow:
        counts = {
            model.__tablename__: await uow.session.scalar(select(func.count()).select_from(model))
            for model in (AuditEntry, Character, Faction, Quest, WorldEntity, User)
        }
        versions = await uow.session.scalar(select(func.coalesce(func.sum(Character.version), 0)))
    return {**{k: int(v or 0) for k, v in counts.items()}, "versions": int(versions or 0)}


async def _refused(api: Api, status: int, method: str, url: str, **kwargs: Any) -> dict[str, Any]:
    """Send the request as the GM; assert a `status` problem and that nothing was written."""
    before = await _stored(api.runtime)
    headers = {**api.gm.headers, **kwargs.pop("headers", {})}
    r = await api.client.request(method, url, headers=headers, **kwargs)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert await _stored(api.runtime) == before
    body: dict[str, Any] = r.json()
    return body


async def _character(api: Api) -> int:
    r = await api.client.post(
        "/v1/characters", json={"name": "Aria", "race": "elf"}, headers=api.gm.headers
    )
    assert r.status_code == 201, r.text
    character_id: int = r.json()["id"]
    return character_id


def _cursor(after: int) -> str:
    return base64.urlsafe_b64encode(b'{"after": %d}' % after).decode().rstrip("=")


async def test_a_login_whose_username_holds_nul_is_a_failed_login_audited_and_throttled(
    api: Api,
) -> None:
    await create_account(api.runtime, "admin", Role.ADMIN)
    for _ in range(LOGIN_THROTTLE_ACCOUNT.max_failures):
        r = await log_in(api.client, "ad\x00min", "x")
        assert r.status_code == 401, r.text
        assert r.headers["content-type"] == "application/problem+json"
    throttled = await log_in(api.client, "ad\x00min", "x")
    assert throttled.status_code == 429
    assert throttled.headers["content-type"] == "application/problem+json"
    failed = await audit_entries(api.runtime, "login_failed")
    assert [e.changes["outcome"] for e in failed] == ["unknown_user"] * 5 + ["throttled"]
    # What was attempted is recorded in a form the databases store: NUL as U+FFFD.
    assert {e.personal["username"] if e.personal else None for e in failed} == {"ad\ufffdmin"}
    # The real account was not the one throttled.
    assert (await log_in(api.client, "admin")).status_code == 200


async def test_an_id_of_5000_nines_is_a_422(api: Api) -> None:
    body = await _refused(api, 422, "GET", "/v1/characters/" + "9" * 5000)
    assert body["errors"][0]["loc"] == ["path", "character_id"]


async def test_a_world_entity_id_past_bigint_is_a_422(api: Api) -> None:
    body = await _refused(api, 422, "GET", "/v1/world/entities/9223372036854775808")
    assert body["errors"][0]["loc"] == ["path", "entity_id"]


@pytest.mark.parametrize("gold", [2**31, 2**63, 2**70])
async def test_gold_past_its_column_is_a_422_on_create_and_update(api: Api, gold: int) -> None:
    new = {"name": "Aria", "race": "elf", "gold": gold}
    await _refused(api, 422, "POST", "/v1/characters", json=new)
    character_id = await _character(api)
    await _refused(api, 422, "PATCH", f"/v1/characters/{character_id}", json={"gold": gold})


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/characters", {"name": "Ar\x00ia", "race": "elf"}),
        ("/v1/characters", {"name": "Aria", "race": "elf\x00"}),
        ("/v1/factions", {"name": "Guild\x00"}),
        ("/v1/quests", {"title": "Quest", "description": "a\x00b"}),
        ("/v1/world/entities", {"kind": "tree\x00", "x": 0, "y": 0, "width": 1, "height": 1}),
    ],
)
async def test_a_nul_in_a_name_is_a_422(api: Api, url: str, body: dict[str, Any]) -> None:
    await _refused(api, 422, "POST", url, json=body)


async def test_a_nul_in_a_renamed_character_is_a_422(api: Api) -> None:
    character_id = await _character(api)
    await _refused(api, 422, "PATCH", f"/v1/characters/{character_id}", json={"name": "A\x00"})


@pytest.mark.parametrize("url", ["/v1/characters", "/v1/factions"])
async def test_a_nul_in_name_contains_is_a_422(api: Api, url: str) -> None:
    body = await _refused(api, 422, "GET", url, params={"name_contains": "a\x00"})
    assert body["errors"][0]["loc"] == ["query", "name_contains"]


@pytest.mark.parametrize("after", [2**63, 2**64 + 5])
async def test_a_cursor_after_an_id_past_bigint_is_a_422(api: Api, after: int) -> None:
    for url in ("/v1/characters", "/v1/factions", "/v1/quests"):
        body = await _refused(api, 422, "GET", url, params={"cursor": _cursor(after)})
        assert body["type"] == "urn:visualdm:problem:rule_violation"


def _nested(depth: int) -> bytes:
    return b'{"a":' * depth + b"1" + b"}" * depth


@pytest.mark.parametrize(
    "derived",
    [_nested(251), _nested(300), b'{"a": 1180591620717411303424}', b'{"a": 1e400}'],
    ids=["251-deep", "300-deep", "2^70", "1e400"],
)
async def test_derived_too_deep_or_holding_a_number_json_cannot_keep_is_a_422(
    api: Api, derived: bytes
) -> None:
    new = b'{"name": "Aria", "race": "elf", "derived": ' + derived + b"}"
    await _refused(api, 422, "POST", "/v1/characters", content=new, headers=JSON)
    character_id = await _character(api)
    change = b'{"derived": ' + derived + b"}"
    await _refused(
        api, 422, "PATCH", f"/v1/characters/{character_id}", content=change, headers=JSON
    )
    inventory = b'{"name": "Aria", "race": "elf", "inventory": [' + derived + b"]}"
    await _refused(api, 422, "POST", "/v1/characters", content=inventory, headers=JSON)


async def test_a_nul_inside_derived_is_a_422(api: Api) -> None:
    for derived in ({"a\x00": 1}, {"a": "b\x00"}):
        new = {"name": "Aria", "race": "elf", "derived": derived}
        await _refused(api, 422, "POST", "/v1/characters", json=new)


async def test_a_time_without_a_utc_form_is_a_422(api: Api) -> None:
    at = "0001-01-01T00:00:00+14:00"
    character_id = await _character(api)
    url = f"/v1/characters/{character_id}/position"
    body = await _refused(api, 422, "PUT", url, json={"x": 1, "y": 1, "at": at})
    assert body["errors"][0]["loc"] == ["body", "at"]
    entity = {"kind": "tree", "x": 0, "y": 0, "width": 1, "height": 1, "at": at}
    await _refused(api, 422, "POST", "/v1/world/entities", json=entity)


@pytest.mark.parametrize(
    ("url", "body"),
    [
        ("/v1/characters", b'{"name": "Aria", "race": "elf", "derived": {"k\\udc00": 1}}'),
        ("/v1/characters", b'{"name": "Aria", "race": "elf", "inventory": ["\\ud800"]}'),
        ("/v1/quests", b'{"title": "Quest", "rewards": {"items": ["\\ud800"]}}'),
        ("/v1/auth/register", b'{"username": "someone", "password": "\\ud800 long enough pw"}'),
    ],
    ids=["derived-key", "inventory", "reward-items", "register-password"],
)
async def test_a_lone_surrogate_escape_is_a_422(api: Api, url: str, body: bytes) -> None:
    # JSON may escape half a UTF-16 pair; such text has no UTF-8 form for either database.
    await _refused(api, 422, "POST", url, content=body, headers=JSON)


async def test_a_login_whose_password_is_a_lone_surrogate_is_a_failed_login(api: Api) -> None:
    await create_account(api.runtime, "admin", Role.ADMIN)
    body = b'{"username": "admin", "password": "\\ud800"}'
    r = await api.client.post("/v1/auth/login", content=body, headers=JSON)
    assert r.status_code == 401, r.text
    assert r.headers["content-type"] == "application/problem+json"
    (failed,) = await audit_entries(api.runtime, "login_failed")
    assert failed.changes["outcome"] == "bad_password"


async def test_a_nul_in_a_kind_filter_is_a_422(api: Api) -> None:
    params = {"x": "0", "y": "0", "r": "5", "kind": "tree\x00"}
    body = await _refused(api, 422, "GET", "/v1/world/entities", params=params)
    assert body["errors"][0]["loc"][:2] == ["query", "kind"]
