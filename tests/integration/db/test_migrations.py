"""Migrations: a full upgrade/downgrade/upgrade round trip and no drift, on both databases."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from tests.support import databases
from visualdm.access.principals import SystemActor
from visualdm.audit import seal
from visualdm.audit import service as audit
from visualdm.audit.chain import GENESIS
from visualdm.clock import FrozenClock
from visualdm.db import migrate
from visualdm.db.engine import Database
from visualdm.db.registry import metadata
from visualdm.db.unit_of_work import unit_of_work

AT = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[AsyncEngine]:
    if request.param == "sqlite":
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'm.db'}")
        yield engine
        await engine.dispose()
        return
    name = await databases.create_empty_pg_database()
    engine = create_async_engine(databases.pg_url(name))
    try:
        yield engine
    finally:
        await engine.dispose()
        await databases.drop_pg_database(name)


async def _tables(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        names = await conn.run_sync(lambda c: inspect(c).get_table_names())
    return set(names) - {"alembic_version"}


async def test_upgrade_downgrade_upgrade_round_trip_without_drift(
    empty_engine: AsyncEngine,
) -> None:
    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == set(metadata().tables)
    await migrate.check(empty_engine)
    await migrate.downgrade(empty_engine, "base")
    assert await _tables(empty_engine) == set()
    await migrate.upgrade(empty_engine)
    assert await _tables(empty_engine) == set(metadata().tables)
    await migrate.check(empty_engine)


def _chained_before_0003(prev: str, seq: int, changes: dict[str, object]) -> str:
    """How revision 0002's writers hashed a link (kept here as the historical reference)."""
    body = orjson.dumps(
        {
            "seq": seq,
            "at": AT.isoformat(),
            "user": None,
            "system": "old-writer",
            "module": None,
            "action": "update",
            "entity": "character",
            "entity_id": str(seq),
            "changes": changes,
            "personal": None,
        },
        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS,
    )
    return hashlib.sha256(prev.encode() + body).hexdigest()


async def test_a_chain_written_before_0003_still_verifies_and_grows_after_it(
    empty_engine: AsyncEngine, tmp_path: Path
) -> None:
    await migrate.upgrade(empty_engine, "0002")
    prev = GENESIS
    async with empty_engine.begin() as conn:
        for seq in (1, 2):
            changes = {"gold": {"old": seq, "new": seq + 1}, "name": "ü"}
            link = _chained_before_0003(prev, seq, changes)
            await conn.execute(
                text(
                    "INSERT INTO audit_log (seq, occurred_at, actor_system, action, entity, "
                    "entity_id, changes, prev_hash, hash) VALUES (:seq, :at, 'old-writer', "
                    "'update', 'character', :eid, :changes, :prev, :hash)"
                ),
                {
                    "seq": seq,
                    "at": AT
                    if empty_engine.dialect.name == "postgresql"
                    else AT.replace(tzinfo=None),
                    "eid": str(seq),
                    "changes": orjson.dumps(changes).decode(),
                    "prev": prev,
                    "hash": link,
                },
            )
            prev = link
        await conn.execute(
            text("INSERT INTO audit_chain_head (id, last_seq, last_hash) VALUES (1, 2, :h)"),
            {"h": prev},
        )
    await migrate.upgrade(empty_engine)
    db = Database(
        engine=empty_engine,
        sessions=async_sessionmaker(empty_engine, expire_on_commit=False),
        role_prefix=None,
    )
    clock = FrozenClock(AT)
    async with unit_of_work(db, clock=clock) as u:
        audit.record(u, actor=SystemActor("new"), action="update", entity="x", entity_id=3,
                     changes={"big": 2**70, "float": 1e16})  # fmt: skip
    async with unit_of_work(db, clock=clock) as u:
        assert await seal.seal_batch(u) == 1
    async with unit_of_work(db, clock=clock) as u:
        report = await seal.verify(u.session)
    assert report.ok, report
    assert report.checked == 3
