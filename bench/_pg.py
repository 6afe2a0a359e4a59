"""A throwaway, migrated PostgreSQL database for one benchmark run."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.engine import make_url

from visualdm.db.engine import Database, create_database
from visualdm.db.migrate import upgrade
from visualdm.db.roles import provision_roles
from visualdm.settings import Settings

SERVER = os.environ.get(
    "VDM_BENCH_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)


def _admin_dsn() -> str:
    return make_url(SERVER).set(drivername="postgresql").render_as_string(hide_password=False)


@asynccontextmanager
async def bench_database(tag: str, *, pool_size: int = 10) -> AsyncIterator[Database]:
    """Create, migrate and provision `vdm_bench_<tag>_<random>`; drop it afterwards."""
    name = f"vdm_bench_{tag}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_admin_dsn())
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    db = create_database(Settings(database_url=url, db_pool_size=pool_size))
    try:
        await upgrade(db.engine)
        assert db.role_prefix is not None
        await provision_roles(db.engine, db.role_prefix)
        yield db
    finally:
        await db.dispose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
