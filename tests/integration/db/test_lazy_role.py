"""A unit of work connects at its first statement, which then runs under the module's role."""

from __future__ import annotations

from sqlalchemy import event, func, select, text

from tests.conftest import UowFactory
from visualdm.access.principals import SystemActor
from visualdm.audit import service as audit
from visualdm.audit.models import AuditEntry
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.ownership import Module


async def _current_user(u: UnitOfWork) -> str:
    return str(await u.session.scalar(text("SELECT current_user")))


async def test_the_role_is_applied_when_the_connection_is_taken(
    database: Database, uow: UowFactory
) -> None:
    async with uow() as u:
        async with u.acting_as(Module.CHARACTER_MANAGEMENT):
            assert not u.session.in_transaction()  # nothing begins before the first statement
            assert not u._has_connection  # entering a module block costs no round trip
            inside = await _current_user(u) if database.role_prefix else None
        outside = await _current_user(u) if database.role_prefix else None
        async with u.acting_as(Module.QUEST_MANAGEMENT):
            again = await _current_user(u) if database.role_prefix else None
    if database.role_prefix is None:
        assert database.dialect == "sqlite"
        return
    prefix = database.role_prefix
    assert inside == f"{prefix}{Module.CHARACTER_MANAGEMENT.value}"
    assert outside is not None
    assert not outside.startswith(prefix)
    assert again == f"{prefix}{Module.QUEST_MANAGEMENT.value}"


async def test_a_unit_of_work_that_touches_nothing_takes_no_connection(
    database: Database, uow: UowFactory
) -> None:
    checkouts: list[object] = []
    pool = database.engine.sync_engine.pool

    def count(*_args: object) -> None:
        checkouts.append(_args)

    event.listen(pool, "checkout", count)
    try:
        async with uow() as u, u.acting_as(Module.CHARACTER_MANAGEMENT):
            pass  # e.g. a read answered from the cache
        assert checkouts == []
        async with uow() as u:
            await u.session.execute(text("SELECT 1"))
        assert len(checkouts) == 1
    finally:
        event.remove(pool, "checkout", count)


async def test_an_audit_entry_alone_is_still_committed(database: Database, uow: UowFactory) -> None:
    # A sensitive read served from the cache issues no statement but must leave its audit entry.
    async with uow() as u:
        before = await u.session.scalar(select(func.count()).select_from(AuditEntry))
    async with uow() as u, u.acting_as(Module.AUTHENTICATION):
        audit.record(
            u, actor=SystemActor("test"), action="read", entity="user", entity_id=1, changes={}
        )
    async with uow() as u:
        after = await u.session.scalar(select(func.count()).select_from(AuditEntry))
    assert after == (before or 0) + 1


async def test_leaving_a_module_is_paid_only_when_a_statement_follows(
    database: Database, uow: UowFactory
) -> None:
    if database.role_prefix is None:
        assert database.dialect == "sqlite"
        return
    role = f"{database.role_prefix}{Module.CHARACTER_MANAGEMENT.value}"
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        sent.append(statement)

    event.listen(database.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with uow() as u:
            async with u.acting_as(Module.CHARACTER_MANAGEMENT):
                first = await _current_user(u)
            sent.clear()
            async with u.acting_as(Module.CHARACTER_MANAGEMENT):
                second = await _current_user(u)
            assert not any("ROLE" in s for s in sent)  # back in the same module: no switch
            outside = await _current_user(u)  # the owed reset is paid before this statement
            async with u.acting_as(Module.CHARACTER_MANAGEMENT):
                third = await _current_user(u)  # and the role is taken again after it
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", record)
    assert first == second == third == role
    assert outside != role
    assert not outside.startswith(database.role_prefix)
