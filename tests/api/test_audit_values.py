"""Whatever a player puts in a free JSON field, the audit chain verifies afterwards.

PostgreSQL's JSONB rewrites numbers (1e16 is stored as 10000000000000000); the chain hashes the
exact text the audit log stores, so no storage can break it. `visualdm audit verify` runs as an
operator would run it, against the same database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.support.api import ApiUser, api_client, make_user
from visualdm.audit import seal
from visualdm.cli.main import app
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import Role


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": 1e16}
    for _ in range(depth):
        value = {"n": value}
    return value


HOSTILE: list[Any] = [
    1e16,
    2**70,
    -(2**80),
    1e308,
    -0.0,
    0.1,
    123456789.123456789,
    'ünïcødé ✓ \u2028 "quotes" \\ backslash',
    [1, 1.0, True, None, "1"],
    _nested(100),
]


@pytest.fixture
async def player(database: Database, clock: FrozenClock) -> AsyncIterator[tuple[Any, ApiUser, Any]]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield client, await make_user(runtime, "tinkerer", Role.PLAYER), runtime


def _verify_as_an_operator(database: Database, tmp_path: Path) -> Any:
    env = {
        "VDM_DATABASE_URL": database.engine.url.render_as_string(hide_password=False),
        "VDM_DATA_DIR": str(tmp_path),
        "VDM_JWT_SECRET": "operator-secret-" + "y" * 40,
        "VDM_SCHEDULER": "false",
    }
    return CliRunner().invoke(app, ["audit", "verify"], env=env)


async def test_hostile_json_values_leave_a_verifiable_chain(
    player: tuple[Any, ApiUser, Any], database: Database, tmp_path: Path
) -> None:
    client, alice, runtime = player
    made = await client.post(
        "/v1/characters",
        json={"name": "Numbers", "race": "elf", "derived": {"start": 1e16}},
        headers=alice.headers,
    )
    assert made.status_code == 201, made.text
    url = f"/v1/characters/{made.json()['id']}"
    answered = []
    for value in HOSTILE:
        r = await client.patch(url, json={"derived": {"v": value}}, headers=alice.headers)
        answered.append(r.status_code)
        assert r.status_code < 500, (value, r.text)
    assert answered.count(200) >= 5, answered  # most of them are plain JSON and are stored
    sealed = await seal.seal_all(runtime.uow)
    assert sealed >= 1 + answered.count(200)
    result = await asyncio.to_thread(_verify_as_an_operator, database, tmp_path)
    assert result.exit_code == 0, result.output
    assert f"audit chain intact: {sealed} entries verified" in result.output
