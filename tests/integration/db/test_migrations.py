"""Migrations: a full upgrade/downgrade/upgrade round trip and no drift, on both databases."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from tests.support import databases
from visualdm.db import migrate
from visualdm.db.registry import metadata


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
