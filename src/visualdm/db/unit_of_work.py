"""The unit of work: one transaction, the module it runs as, and what to do after it commits.

`async with unit_of_work(db, clock=...) as uow:` is the only way to open a transaction; it is
used by the API dependency, the CLI and the job runner. Services and repositories never commit.
Audit entries are inserted just before commit (sealing them into the chain is a job of its own,
off the write's path); events and cache updates run only after the commit succeeded.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import Executable, Table, insert
from sqlalchemy.engine import Result, Row
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from visualdm.clock import Clock
from visualdm.db.engine import ROLE_STATE, Database, RoleState
from visualdm.events import outbox
from visualdm.events.bus import DomainEvent, EventBus
from visualdm.ownership import Module

if TYPE_CHECKING:
    from visualdm.audit.models import PendingAudit
    from visualdm.cache.backend import Cache
    from visualdm.events.outbox import Outbox

log = structlog.get_logger(__name__)

AfterCommit = Callable[[], Awaitable[None]]
BeforeCommit = Callable[["UnitOfWork"], Awaitable[None]]
OpenUow = Callable[[], AbstractAsyncContextManager["UnitOfWork"]]
"""Opens one unit of work (one transaction): jobs and background loops open one per batch."""


@dataclass
class UnitOfWork:
    """A transaction in progress, with the services' shared context."""

    clock: Clock
    db: Database
    bus: EventBus | None = None
    cache: Cache | None = None
    module: Module | None = None
    outbox: Outbox | None = None
    events: list[DomainEvent] = field(default_factory=list)
    cache_tags: list[str] = field(default_factory=list)
    """Cache tags this transaction's changes invalidate (kept with its outbox rows)."""
    pending_audit: list[PendingAudit] = field(default_factory=list)
    _after_commit: list[AfterCommit] = field(default_factory=list)
    _before_commit: list[BeforeCommit] = field(default_factory=list)
    _has_connection: bool = False
    _roles: RoleState | None = None
    _session: AsyncSession | None = None
    _conn: AsyncConnection | None = None
    _staged: list[str] = field(default_factory=list)
    _appended: list[tuple[Table, list[dict[str, Any]]]] = field(default_factory=list)
    wrote_cache: bool = False
    """Whether this unit queued cache changes (its own reads then bypass the cache)."""

    @property
    def session(self) -> AsyncSession:
        """The transaction's ORM session, opened on first use: a unit of work answered from the
        cache, or written with Core statements alone, never builds one."""
        if self._session is None:
            if self._conn is not None:
                # Core statements began the transaction: the session joins it (and leaves
                # committing it to the unit of work).
                self._session = self.db.sessions(bind=self._conn)
            else:
                self._session = self.db.sessions()
                self._session.sync_session.info["on_begin"] = self._connected
        return self._session

    async def connection(self) -> AsyncConnection:
        """The transaction's connection: the session's, or a bare one begun on first use (with
        the module's role), which spares the ORM session's cost to Core-only units of work."""
        if self._conn is not None:
            return self._conn
        if self._session is not None:
            return await self._session.connection()
        conn = await self.db.engine.connect()
        try:
            await conn.begin()
            sql = self._began(conn.sync_connection.info)  # type: ignore[union-attr]
            if sql is not None:
                await conn.exec_driver_sql(sql)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn
        return conn

    @property
    def in_transaction(self) -> bool:
        """Whether the transaction has begun (a statement ran or a change is pending)."""
        return self._conn is not None or (
            self._session is not None and self._session.in_transaction()
        )

    @asynccontextmanager
    async def acting_as(self, module: Module) -> AsyncIterator[UnitOfWork]:
        """Run the block as `module`: on PostgreSQL under that module's least-privilege role."""
        previous = self.module
        if previous is not module:
            await self._set_role(module)
        self.module = module
        try:
            yield self
        except BaseException:
            self.module = previous
            await self._reset_role_quietly(previous)
            raise
        self.module = previous
        if previous is not module:
            await self._set_role(previous)

    async def execute(self, statement: Executable, params: Any = None) -> Result[Any]:
        """Run a Core statement in the transaction, bypassing the ORM (no autoflush)."""
        connection = await self.connection()
        return await connection.execute(statement, params)

    def _connected(self, connection: Any) -> None:
        """Session hook: the transaction took its connection; give it the current module's role."""
        sql = self._began(connection.info)
        if sql is not None:
            connection.exec_driver_sql(sql)

    def _began(self, info: dict[Any, Any]) -> str | None:
        """Note that the transaction began on a connection whose `info` is given; returns the
        statement that gives it the current module's role (None when there is none to take)."""
        self._has_connection = True
        if self.db.role_prefix is None:
            return None
        self._roles = info[ROLE_STATE] = RoleState()
        if self.module is None:
            return None
        self._roles.current = self.module
        return self.db.set_role_sql(self.module)

    async def read_one(self, statement: Executable, params: Any = None) -> Row[Any] | None:
        """The first row of a read of at most one row (see `read_all`)."""
        rows = await self.read_all(statement, params)
        return rows[0] if rows else None

    async def read_all(self, statement: Executable, params: Any = None) -> Sequence[Row[Any]]:
        """The rows of a read; alone on the module's reader when no transaction is open.

        On PostgreSQL a unit of work that has not begun runs the read on its module's
        autocommit reader (db/engine.py): one round trip. Otherwise it runs in the transaction,
        which also sees the unit's own uncommitted changes.
        """
        module = self.module
        if module is None or self.in_transaction or self.db.dialect != "postgresql":
            return (await self.execute(statement, params)).all()
        async with self.db.reader(module).connect() as connection:
            return (await connection.execute(statement, params)).all()

    def append_rows(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Queue `rows` for `table`, inserted just before commit with the others queued."""
        if rows:
            self._appended.append((table, rows))

    async def _insert_appended(self) -> None:
        """Insert the queued rows: on PostgreSQL in one statement (data-modifying CTEs)."""
        batches, self._appended = self._appended, []
        if self.db.dialect == "postgresql" and len(batches) > 1:
            *others, (table, rows) = batches
            statement = insert(table).values(rows)
            for number, (other, other_rows) in enumerate(others):
                statement = statement.add_cte(
                    insert(other).values(other_rows).cte(f"appended_{number}")
                )
            await self.execute(statement)
            return
        for table, rows in batches:
            await self.execute(insert(table), rows)

    def publish(self, event: DomainEvent) -> None:
        """Queue `event`; it is published after (and only if) the transaction commits."""
        self.events.append(event)

    def after_commit(self, callback: AfterCommit) -> None:
        """Run `callback` after the commit succeeded (cache write-through, notifications)."""
        self._after_commit.append(callback)

    def before_commit(self, callback: BeforeCommit) -> None:
        """Run `callback` just before commit, inside the transaction (once per registration)."""
        self._before_commit.append(callback)

    async def _set_role(self, module: Module | None) -> None:
        # Before the first statement there is no connection to set: _connected() applies the
        # role when one is taken, so a request served from the cache costs no database trip.
        roles = self._roles
        if roles is None:  # no connection yet (or no roles): _began() applies the module
            return
        if module is None:
            # Owed, not paid: the next statement resets first (db/engine.py), if one comes.
            roles.reset_due = roles.current is not None
            return
        roles.reset_due = False
        if module is not roles.current:
            sql = self.db.set_role_sql(module)
            assert sql is not None  # there are roles: self._roles exists
            connection = await self.connection()
            await connection.exec_driver_sql(sql)
            roles.current = module

    async def _reset_role_quietly(self, module: Module | None) -> None:
        # The transaction is already failing and will be rolled back as a whole; whatever the
        # reset raises (a failed transaction, a pending rollback) must not hide the real error.
        with contextlib.suppress(SQLAlchemyError):
            await self._set_role(module)

    async def _finish(self) -> None:
        last = self._roles.current if self._roles is not None else None
        if last is not None and self.module is None:
            # Audit and outbox rows may be inserted under any module role: staying in the
            # last one spares the reset before them.
            async with self.acting_as(last):
                await self._before_commit_work()
        else:
            await self._before_commit_work()

    async def _before_commit_work(self) -> None:
        for callback in self._before_commit:
            await callback(self)
        if self.events or self.cache_tags:
            # The events commit with the change or not at all (events/outbox.py).
            self._staged = outbox.stage(self)
        await self._insert_appended()

    async def _committed(self) -> None:
        for callback in self._after_commit:
            try:
                await callback()
            except Exception:
                # The data is committed; a cache or notifier failure must not report failure.
                log.exception("after-commit callback failed")
        if self.bus is not None and self.events:
            try:
                await self.bus.publish(self.events)
            except Exception:
                # Left unacknowledged: a relay delivers them after the grace period.
                log.exception("event publication failed", count=len(self.events))
                return
        if self.outbox is not None and self._staged:
            self.outbox.acknowledge(self._staged)


@asynccontextmanager
async def unit_of_work(
    db: Database,
    *,
    clock: Clock,
    bus: EventBus | None = None,
    cache: Cache | None = None,
    outbox: Outbox | None = None,
) -> AsyncIterator[UnitOfWork]:
    """Open a transaction; commit when the block succeeds, roll back when it raises."""
    uow = UnitOfWork(clock=clock, db=db, bus=bus, cache=cache, outbox=outbox)
    # The session opens on first use and its transaction begins with the first statement or
    # change (autobegin), so a unit of work answered from the cache costs no session at all.
    try:
        yield uow
        if uow._before_commit or uow.events or uow.in_transaction:
            session = uow._session
            if session is not None:
                await session.flush()
            await uow._finish()
            session = uow._session
            if session is not None:
                await session.flush()
            if uow._conn is not None:
                await uow._conn.commit()
            elif session is not None:
                await session.commit()
    except BaseException:
        if uow._conn is not None:
            await uow._conn.rollback()
        elif uow._session is not None and uow._session.in_transaction():
            await uow._session.rollback()
        raise
    finally:
        if uow._session is not None:
            await uow._session.close()
        if uow._conn is not None:
            await uow._conn.close()
    await uow._committed()
