"""Round trips pinned: an uncached character read is one statement and, on PostgreSQL, no
transaction at all (the module's autocommit reader, whose connections already hold its role)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from tests.conftest import UowFactory
from tests.support.world import add_user
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.db.engine import Database
from visualdm.ownership import Module


async def _trips(
    database: Database, read: Callable[[], Awaitable[object]]
) -> tuple[list[str], int]:
    """The statements `read` sent and how many transactions it took from the main pool."""
    sent: list[str] = []
    transactions: list[object] = []

    def statement(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        sent.append(sql.split()[0].upper())

    def checkout(*args: object) -> None:
        transactions.append(args)

    engines = [database.engine.sync_engine]
    if database.dialect == "postgresql":
        engines.append(database.reader(Module.CHARACTER_MANAGEMENT).sync_engine)
    for engine in engines:
        event.listen(engine, "before_cursor_execute", statement)
    # A unit of work's transaction is the main pool's connection; the reader's are autocommit.
    event.listen(database.engine.sync_engine.pool, "checkout", checkout)
    try:
        await read()
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", statement)
        event.remove(database.engine.sync_engine.pool, "checkout", checkout)
    return sent, len(transactions)


async def test_an_uncached_character_read_and_a_list_page_are_one_select_each(
    database: Database, uow: UowFactory
) -> None:
    async with uow() as u:
        owner = await add_user(u.session, "reader")
        made = await characters.create_character(
            u, actor=owner, data=CharacterCreate(name="Counted", race="elf")
        )
    found: list[object] = []

    async def read_one() -> None:
        async with uow() as u:
            found.append(
                await characters.get_character_document(u, actor=owner, character_id=made.id)
            )

    async def read_page() -> None:
        async with uow() as u:
            found.append(await characters.list_characters(u, actor=owner, limit=50))

    for read in (read_one, read_page):
        sent, transactions = await _trips(database, read)
        if database.dialect == "postgresql":
            # No BEGIN, no SET ROLE, no COMMIT: the query is the only round trip.
            assert (sent, transactions) == (["SELECT"], 0)
        else:
            assert sent == ["BEGIN", "SELECT"]  # the embedded file: one transaction, no roles
    document, page = found
    assert document["name"] == "Counted"  # type: ignore[index]
    assert [c.name for c in page.items] == ["Counted"]  # type: ignore[attr-defined]


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
