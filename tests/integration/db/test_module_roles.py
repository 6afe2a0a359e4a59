"""Least-privilege database roles (spec 6.2): PostgreSQL itself refuses what the matrix forbids."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests.conftest import UowFactory
from tests.support.world import add_user
from visualdm.access.policy import module_may
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.db.engine import Database
from visualdm.ownership import Action, Module, Resource, Role


async def _refused(uow: UowFactory, module: Module, sql: str) -> str:
    """Run `sql` as `module`; return the database's refusal message."""
    with pytest.raises(DBAPIError) as caught:
        async with uow() as u, u.acting_as(module):
            await u.session.execute(text(sql))
    return str(caught.value.orig)


async def test_the_character_systems_role_cannot_write_factions(
    database: Database, uow: UowFactory
) -> None:
    assert not module_may(Module.CHARACTER_MANAGEMENT, Resource.FACTION, Action.CREATE)
    if database.dialect != "postgresql":
        # SQLite has no roles: the module check above is the enforcement there.
        assert database.role_prefix is None
        return
    message = await _refused(
        uow,
        Module.CHARACTER_MANAGEMENT,
        "INSERT INTO factions (name, description, created_at, updated_at, version) "
        "VALUES ('x', '', now(), now(), 1)",
    )
    assert "permission denied for table factions" in message


async def test_module_roles_may_append_to_the_audit_log_but_never_change_it(
    database: Database, uow: UowFactory
) -> None:
    if database.dialect != "postgresql":
        assert database.role_prefix is None
        return
    for sql in ("UPDATE audit_log SET action = 'x'", "DELETE FROM audit_log"):
        message = await _refused(uow, Module.QUEST_MANAGEMENT, sql)
        assert "permission denied for table audit_log" in message
    # Nor can any module move the chain's head: sealing is not a module's to do.
    for sql in ("SELECT * FROM audit_chain_head", "UPDATE audit_chain_head SET last_seq = 0"):
        message = await _refused(uow, Module.CHARACTER_MANAGEMENT, sql)
        assert "permission denied for table audit_chain_head" in message


async def test_the_spatial_role_reads_positions_but_not_the_rest_of_a_character(
    database: Database, uow: UowFactory
) -> None:
    async with uow() as u:
        owner = await add_user(u.session, "owner", Role.PLAYER)
        made = await characters.create_character(
            u, actor=owner, data=CharacterCreate(name="n", race="elf")
        )
        await characters.set_position(u, actor=owner, character_id=made.id, x=1.5, y=2.5)
    async with uow() as u, u.acting_as(Module.SPATIAL_MANAGEMENT):
        row = (await u.session.execute(text("SELECT id, x, y FROM characters"))).one()
    assert (row.x, row.y) == (1.5, 2.5)
    if database.dialect != "postgresql":
        assert database.role_prefix is None
        return
    message = await _refused(uow, Module.SPATIAL_MANAGEMENT, "SELECT name FROM characters")
    assert "permission denied for table characters" in message
    message = await _refused(uow, Module.SPATIAL_MANAGEMENT, "SELECT * FROM users")
    assert "permission denied for table users" in message
