"""Suite-wide fixtures: databases (SQLite and PostgreSQL), a frozen clock, units of work."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from tests.support import databases
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database, create_database
from visualdm.db.unit_of_work import UnitOfWork, unit_of_work
from visualdm.events.bus import InProcessBus
from visualdm.settings import Settings

settings.register_profile(
    "ci", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

EPOCH = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FrozenClock:
    """A clock frozen at a known instant; tests move it explicitly."""
    return FrozenClock(EPOCH)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[str]:
    """A migrated PostgreSQL template database for this test process."""
    name = asyncio.run(databases.create_pg_template())
    yield name
    asyncio.run(databases.drop_pg_database(name))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file for this test process."""
    directory = tmp_path_factory.mktemp("sqlite-template")
    return asyncio.run(databases.create_sqlite_template(directory))


@pytest.fixture(params=["sqlite", "postgres"])
async def database(
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path, pg_template: str
) -> AsyncIterator[Database]:
    """A fresh migrated database; every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        path = databases.copy_sqlite(sqlite_template, tmp_path)
        db = create_database(Settings(database_url=f"sqlite+aiosqlite:///{path}"))
        yield db
        await db.dispose()
        return
    name = await databases.create_pg_database(pg_template)
    db = create_database(
        Settings(database_url=databases.pg_url(name), db_pool_size=4),
        role_prefix=databases.ROLE_PREFIX,
    )
    try:
        yield db
    finally:
        await db.dispose()
        await databases.drop_pg_database(name)


UowFactory = Callable[[], AbstractAsyncContextManager[UnitOfWork]]


@pytest.fixture
def bus() -> InProcessBus:
    """An in-process event bus that tests can subscribe to."""
    return InProcessBus()


@pytest.fixture
def uow(database: Database, clock: FrozenClock, bus: InProcessBus) -> UowFactory:
    """Open a unit of work on the test database: `async with uow() as u: ...`."""
    return lambda: unit_of_work(database, clock=clock, bus=bus)
