"""Fresh, migrated test databases: one template per run, one cheap copy per test.

PostgreSQL: the template is migrated and given the module roles once; each test gets
`CREATE DATABASE ... TEMPLATE` and drops it afterwards. SQLite: the migrated file is copied.
Only databases this module created are ever dropped.
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from tests.support.services import POSTGRES_URL
from visualdm.db import migrate
from visualdm.db.roles import provision_roles

ROLE_PREFIX = "vdm_test_"


def _dsn(database: str) -> str:
    url = make_url(POSTGRES_URL).set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


def pg_url(database: str) -> str:
    """The SQLAlchemy URL of `database` on the test server."""
    return make_url(POSTGRES_URL).set(database=database).render_as_string(hide_password=False)


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(_dsn(make_url(POSTGRES_URL).database or "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def create_pg_template() -> str:
    """Create and migrate a uniquely named template database; returns its name."""
    name = f"vdm_tpl_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    engine = create_async_engine(pg_url(name))
    try:
        await migrate.upgrade(engine)
        await provision_roles(engine, ROLE_PREFIX)
    finally:
        await engine.dispose()
    return name


async def create_pg_database(template: str) -> str:
    """Create a database copied from `template`; returns its name."""
    name = f"vdm_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return name


async def create_empty_pg_database() -> str:
    """Create an empty database (for migration round trips); returns its name."""
    name = f"vdm_t_{uuid.uuid4().hex[:12]}"
    await _admin(f'CREATE DATABASE "{name}"')
    return name


async def drop_pg_database(name: str) -> None:
    """Drop a database this suite created, disconnecting anything still attached."""
    assert name.startswith(("vdm_t_", "vdm_tpl_")), name
    await _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def create_sqlite_template(directory: Path) -> Path:
    """Create and migrate a SQLite file; returns its path."""
    path = directory / "template.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    try:
        await migrate.upgrade(engine)
    finally:
        await engine.dispose()
    return path


def copy_sqlite(template: Path, directory: Path) -> Path:
    """Copy the migrated SQLite template for one test; returns the copy's path."""
    path = directory / f"{uuid.uuid4().hex[:12]}.db"
    shutil.copyfile(template, path)
    return path
