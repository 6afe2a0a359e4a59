"""Round trips pinned: an uncached character read is one statement and, on PostgreSQL, no
transaction at all (the module's autocommit reader, whose connections already hold its role)."""

from __future__ import annotations

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import UowFactory
from tests.support.world import add_user
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.db.engine import Database
from visualdm.ownership import Module


async def test_an_uncached_character_read_is_one_select(
    database: Database, uow: UowFactory
) -> None:
    async with uow() as u:
        owner = await add_user(u.session, "reader")
        made = await characters.create_character(
            u, actor=owner, data=CharacterCreate(name="Counted", race="elf")
        )
    sent: list[str] = []
    transactions: list[object] = []

    def statement(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        sent.append(sql.split()[0].upper())

    def checkout(*_args: object) -> None:
        transactions.append(_args)

    engines = [database.engine.sync_engine]
    if database.dialect == "postgresql":
        engines.append(database.reader(Module.CHARACTER_MANAGEMENT).sync_engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", statement)
    # A unit of work's transaction is the main pool's connection; the reader's are autocommit.
    event.listen(database.engine.sync_engine.pool, "checkout", checkout)
    try:
        async with uow() as u:
            document = await characters.get_character_document(u, actor=owner, character_id=made.id)
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", statement)
        event.remove(database.engine.sync_engine.pool, "checkout", checkout)
    assert document["name"] == "Counted"
    if database.dialect == "postgresql":
        # No BEGIN, no SET ROLE, no COMMIT: the query is the only round trip.
        assert sent == ["SELECT"]
        assert transactions == []
    else:
        assert sent == ["BEGIN", "SELECT"]  # the embedded file: one transaction, no roles


async def test_a_modules_reader_holds_that_modules_role_and_nothing_more(
    database: Database,
) -> None:
    if database.dialect != "postgresql":
        assert database.role_prefix is None
        return
    reader = database.reader(Module.SPATIAL_MANAGEMENT)
    async with reader.connect() as conn:
        who = await conn.scalar(text("SELECT current_user"))
        with pytest.raises(DBAPIError, match="permission denied for table characters"):
            await conn.execute(text("SELECT name FROM characters"))
    assert who == f"{database.role_prefix}{Module.SPATIAL_MANAGEMENT.value}"
