"""Who may write faction data: the module matrix in code, and on PostgreSQL the roles too."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError

from tests.conftest import UowFactory
from tests.integration.factions.conftest import Cast, make_faction
from visualdm.access.policy import authorize, module_may
from visualdm.audit.models import AuditEntry
from visualdm.db.engine import Database
from visualdm.errors import PermissionDenied
from visualdm.factions import service
from visualdm.factions.models import Faction, FactionRelation
from visualdm.ownership import Action, Module, Resource

NOW = datetime(2026, 1, 1, tzinfo=UTC)


async def test_the_character_system_cannot_create_factions(
    uow: UowFactory, cast: Cast, database: Database
) -> None:
    assert not module_may(Module.CHARACTER_MANAGEMENT, Resource.FACTION, Action.CREATE)
    with pytest.raises(PermissionDenied, match="Character Management System may not create"):
        authorize(cast.gm, Module.CHARACTER_MANAGEMENT, Resource.FACTION, Action.CREATE)
    row = {"name": "Forged", "description": "", "created_at": NOW, "updated_at": NOW, "version": 1}
    if database.dialect == "postgresql":
        # The database refuses it as well: the module's role has no INSERT on factions.
        with pytest.raises(DBAPIError, match="permission denied for table factions"):
            async with uow() as u, u.acting_as(Module.CHARACTER_MANAGEMENT):
                await u.session.execute(insert(Faction).values(**row))
    else:
        # SQLite has no roles: the policy check above is the only guard there.
        async with uow() as u, u.acting_as(Module.CHARACTER_MANAGEMENT):
            await u.session.execute(insert(Faction).values(**row))
    async with uow() as u:
        names = (await u.session.scalars(select(Faction.name))).all()
    assert names == ([] if database.dialect == "postgresql" else ["Forged"])


async def test_relations_are_written_by_faction_management_and_no_one_else(
    uow: UowFactory, cast: Cast, database: Database
) -> None:
    a = await make_faction(uow, cast.gm, "A")
    b = await make_faction(uow, cast.gm, "B")
    # Spec 2.2: faction relationships belong to the Faction System, so its manager inserts them.
    assert module_may(Module.FACTION_MANAGEMENT, Resource.FACTION_RELATION, Action.CREATE)
    assert not module_may(Module.CHARACTER_MANAGEMENT, Resource.FACTION_RELATION, Action.CREATE)
    row = {"faction_a_id": a, "faction_b_id": b, "stance": "war", "score": -5, "updated_at": NOW}
    if database.dialect == "postgresql":
        with pytest.raises(DBAPIError, match="permission denied for table faction_relations"):
            async with uow() as u, u.acting_as(Module.CHARACTER_MANAGEMENT):
                await u.session.execute(insert(FactionRelation).values(**row))
    async with uow() as u:
        await service.set_relation(
            u, actor=cast.gm, faction_id=a, other_id=b, stance="war", score=-5
        )
    async with uow() as u:
        got = await service.get_relation(u, actor=cast.alice, faction_id=a, other_id=b)
        entries = (
            await u.session.scalars(
                select(AuditEntry.module).where(AuditEntry.entity == "faction_relation")
            )
        ).all()
    assert (got.stance, got.score) == ("war", -5)
    assert entries == ["faction_management"]


async def test_every_faction_read_is_open_to_players(uow: UowFactory, cast: Cast) -> None:
    root = await make_faction(uow, cast.gm, "Root")
    leaf = await make_faction(uow, cast.gm, "Leaf", parent_id=root)
    async with uow() as u:
        await service.set_relation(
            u, actor=cast.gm, faction_id=root, other_id=leaf, stance="allied", score=50
        )
    async with uow() as u:
        assert (await service.get_faction(u, actor=cast.bob, faction_id=leaf)).parent_id == root
        assert len((await service.list_factions(u, actor=cast.bob)).items) == 2
        assert [f.id for f in await service.ancestors(u, actor=cast.bob, faction_id=leaf)] == [root]
        assert [f.id for f in await service.children(u, actor=cast.bob, faction_id=root)] == [leaf]
        assert (
            await service.get_relation(u, actor=cast.bob, faction_id=leaf, other_id=root)
        ).score == 50
        assert len(await service.list_relations(u, actor=cast.bob, faction_id=root)) == 1
        assert (await service.list_members(u, actor=cast.bob, faction_id=root)).items == []
