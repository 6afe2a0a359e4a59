"""Builds the async engine and session factory from settings; nothing is created at import."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session

from visualdm.ownership import Module
from visualdm.settings import Settings


def role_name(prefix: str, module: Module) -> str:
    """The database role of `module`."""
    return f"{prefix}{module.value}"


class UnitSession(Session):
    """The session class of units of work; `info["on_begin"]` runs when it takes a connection."""


@event.listens_for(UnitSession, "after_begin")
def _on_begin(session: Session, _transaction: Any, connection: Any) -> None:
    # One class-level hook instead of a listener per session: registering and dropping a
    # listener on every request showed up in the API's profile.
    callback = session.info.get("on_begin")
    if callback is not None:
        callback(connection)


ROLE_STATE = "vdm_role_state"
"""Key of a connection's RoleState in its `info` while a unit of work holds it."""


@dataclass
class RoleState:
    """The module role in effect on a connection's transaction, and whether leaving it is owed.

    Leaving a module block does not reset the role at once: the reset is owed, and paid just
    before the next statement (`_pay_owed_reset`). Most transactions run no statement outside
    their module block and commit, which ends SET LOCAL anyway: the round trip is saved.
    """

    current: Module | None = None
    reset_due: bool = False


def _pay_owed_reset(
    conn: Any, cursor: Any, _statement: str, _params: Any, _context: Any, _many: bool
) -> None:
    state = conn.info.get(ROLE_STATE)
    if state is not None and state.reset_due:
        cursor.execute("RESET ROLE")
        state.reset_due = False
        state.current = None


def _forget_role_state(conn: Any) -> None:
    conn.info.pop(ROLE_STATE, None)


@dataclass
class Database:
    """An engine, its session factory and the role policy units of work run under."""

    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    role_prefix: str | None
    reader_pool_size: int = 2
    _readers: dict[Module, AsyncEngine] = field(default_factory=dict)

    def reader(self, module: Module) -> AsyncEngine:
        """An autocommit engine (PostgreSQL) whose connections are `module`'s role from the start.

        A read of one statement runs there in one round trip: no BEGIN, no role switch, no
        COMMIT. Its pool is the module's own, so a connection never serves another role.
        """
        found = self._readers.get(module)
        if found is None:
            found = create_async_engine(
                self.engine.url,
                pool_size=self.reader_pool_size,
                max_overflow=self.reader_pool_size,
                isolation_level="AUTOCOMMIT",
            )
            role = self.set_role_sql(module, local=False)
            if role is not None:

                @event.listens_for(found.sync_engine, "connect")
                def _as_module(dbapi_conn: Any, _record: Any) -> None:
                    cursor = dbapi_conn.cursor()
                    cursor.execute(role)
                    cursor.close()

            self._readers[module] = found
        return found

    def set_role_sql(self, module: Module, *, local: bool = True) -> str | None:
        """The statement that puts a transaction (`local`) or a whole connection under
        `module`'s role; None without roles."""
        if self.role_prefix is None:
            return None
        scope = "LOCAL " if local else ""
        # Role names come from the Module enum and a configured prefix, never from input.
        return f'SET {scope}ROLE "{role_name(self.role_prefix, module)}"'

    @property
    def dialect(self) -> str:
        """'postgresql' or 'sqlite'."""
        return self.engine.dialect.name

    async def dispose(self) -> None:
        """Close every pooled connection."""
        for reader in self._readers.values():
            await reader.dispose()
        self._readers.clear()
        await self.engine.dispose()


def _sqlite_pragmas(engine: AsyncEngine) -> None:
    """Turn on foreign keys and WAL, and make every transaction take the write lock up front.

    SQLite allows one writer; with deferred BEGIN two transactions that read then write deadlock
    into SQLITE_BUSY. BEGIN IMMEDIATE queues writers behind the lock instead (busy_timeout).
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_database(settings: Settings, *, role_prefix: str | None = None) -> Database:
    """Create the engine for `settings.database_url`; module roles only on PostgreSQL."""
    url = settings.database_url
    if url.startswith("sqlite"):
        engine = create_async_engine(url)
        _sqlite_pragmas(engine)
        prefix = None
    else:
        engine = create_async_engine(
            url,
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_pool_size,
            # No ping per checkout (it cost round trips on every request): a connection found
            # dead fails its statement, which answers 503, and SQLAlchemy then replaces every
            # pooled connection that predates the failure.
            pool_pre_ping=False,
        )
        prefix = (role_prefix or settings.db_role_prefix) if settings.db_roles else None
        sync_engine = engine.sync_engine
        event.listen(sync_engine, "before_cursor_execute", _pay_owed_reset)
        # SET LOCAL ends with the transaction: so does what the state says about it.
        event.listen(sync_engine, "commit", _forget_role_state)
        event.listen(sync_engine, "rollback", _forget_role_state)
    sessions = async_sessionmaker(
        engine, expire_on_commit=False, autoflush=True, sync_session_class=UnitSession
    )
    return Database(
        engine=engine,
        sessions=sessions,
        role_prefix=prefix,
        reader_pool_size=max(2, settings.db_pool_size // 2),
    )
