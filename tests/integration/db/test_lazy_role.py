"""A unit of work connects at its first statement, which then runs under the module's role."""

from __future__ import annotations

from sqlalchemy import text

from tests.conftest import UowFactory
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
            assert u.session.in_transaction()
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
