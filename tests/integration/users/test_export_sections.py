"""The export's other-domain sections: every row, grouped by character, in queries that do not
grow with the number of characters."""

from __future__ import annotations

from sqlalchemy import event

from tests.conftest import UowFactory
from tests.support.world import Cast, make_cast
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.db.engine import Database
from visualdm.factions import service as factions
from visualdm.factions.schemas import FactionCreate
from visualdm.quests import service as quests
from visualdm.quests.schemas import QuestCreate
from visualdm.users import export


async def _world(uow: UowFactory, cast: Cast, heroes: int) -> list[int]:
    """Give alice `heroes` characters, each in two factions and on two quests."""
    async with uow() as u:
        made = [
            await characters.create_character(
                u,
                actor=cast.gm,
                data=CharacterCreate(name=f"Hero {i}", race="elf", owner_id=cast.alice.user_id),
            )
            for i in range(heroes)
        ]
        guilds = [
            await factions.create_faction(u, actor=cast.gm, data=FactionCreate(name=f"Guild {i}"))
            for i in range(2)
        ]
        tasks = [
            await quests.create_quest(
                u, actor=cast.gm, data=QuestCreate(title=f"Task {i}", status="available")
            )
            for i in range(2)
        ]
    async with uow() as u:
        for hero in made:
            for guild in guilds:
                await factions.join_faction(
                    u, actor=cast.gm, faction_id=guild.id, character_id=hero.id
                )
            for task in tasks:
                await quests.assign_quest(u, actor=cast.gm, quest_id=task.id, character_id=hero.id)
    return [h.id for h in made]


async def _export(
    uow: UowFactory, database: Database, cast: Cast
) -> tuple[dict[str, list[dict[str, object]]], int]:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, sql: str, *_args: object) -> None:
        statements.append(sql)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", count)
    try:
        rows: dict[str, list[dict[str, object]]] = {}
        async with uow() as u:
            for section in export.sections(cast.alice):
                name, found = await section(u, cast.alice.user_id)
                rows[name] = found
    finally:
        event.remove(engine, "before_cursor_execute", count)
    return rows, len(statements)


async def test_the_sections_hold_every_row_in_a_fixed_number_of_queries(
    uow: UowFactory, database: Database
) -> None:
    cast = await make_cast(uow)
    first = await _world(uow, cast, 1)
    _, one_hero = await _export(uow, database, cast)
    more = await _world(uow, cast, 4)
    rows, five_heroes = await _export(uow, database, cast)
    heroes = first + more
    assert [c["id"] for c in rows["characters"]] == heroes
    assert [m["character_id"] for m in rows["faction_memberships"]] == [
        h for h in heroes for _ in range(2)
    ]
    assert [a["character_id"] for a in rows["quest_assignments"]] == [
        h for h in heroes for _ in range(2)
    ]
    assert five_heroes == one_hero  # no query per character


async def test_a_user_without_characters_exports_empty_sections(
    uow: UowFactory, database: Database
) -> None:
    cast = await make_cast(uow)
    rows, _ = await _export(uow, database, cast)
    assert rows == {"characters": [], "faction_memberships": [], "quest_assignments": []}
