"""Purge (spec 2.1-2.3, 2.5): retention boundaries to the second, dependants, audit, dry run."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.conftest import UowFactory
from tests.integration.lifecycle.conftest import World, audit_actions, count
from visualdm.characters import service as characters
from visualdm.characters.models import Character
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import FrozenClock
from visualdm.factions import service as factions
from visualdm.factions.models import CharacterFaction, Faction
from visualdm.lifecycle.purge import purge
from visualdm.ownership import Domain, retention
from visualdm.quests import service as quests
from visualdm.quests.models import CharacterQuest, Quest
from visualdm.users import service as users
from visualdm.users.models import User

SECOND = timedelta(seconds=1)


class _Store:
    async def revoke_user(self, user_id: int) -> None:
        return None


async def _delete(uow: UowFactory, world: World, kind: str) -> tuple[type[object], int]:
    async with uow() as u:
        if kind == "character":
            await characters.delete_character(u, actor=world.player, character_id=world.hero)
            return Character, world.hero
        if kind == "faction":
            await factions.delete_faction(u, actor=world.gm, faction_id=world.faction)
            return Faction, world.faction
        if kind == "quest":
            await quests.delete_quest(u, actor=world.gm, quest_id=world.quest)
            return Quest, world.quest
        await users.delete_user(
            u,
            actor=world.player,
            store=_Store(),  # type: ignore[arg-type]
            user_id=world.player.user_id,
        )
        return User, world.player.user_id


DOMAIN = {
    "character": Domain.CHARACTER,
    "faction": Domain.FACTION,
    "quest": Domain.QUEST,
    "user": Domain.AUTHENTICATION,
}


@pytest.mark.parametrize("kind", ["character", "faction", "quest", "user"])
async def test_a_row_is_purged_one_second_after_its_retention_and_not_one_second_before(
    uow: UowFactory, clock: FrozenClock, world: World, kind: str
) -> None:
    model, row_id = await _delete(uow, world, kind)
    deleted_at = clock.now()
    kept = retention(DOMAIN[kind])

    report = await purge(uow, now=deleted_at + kept - SECOND)
    assert report.counts[kind] == 0
    assert await count(uow, model, model.id == row_id) == 1  # type: ignore[attr-defined]

    report = await purge(uow, now=deleted_at + kept + SECOND)
    assert report.counts[kind] == 1
    assert await count(uow, model, model.id == row_id) == 0  # type: ignore[attr-defined]
    (entry,) = [e for e in await audit_actions(uow, "purge") if e.entity == kind]
    assert entry.changes["records"] == [row_id]
    assert entry.changes["retention_days"] == kept.days


async def test_purging_a_character_takes_and_audits_its_memberships_and_assignments(
    uow: UowFactory, clock: FrozenClock, world: World
) -> None:
    await _delete(uow, world, "character")
    await purge(uow, now=clock.now() + timedelta(days=31))
    assert await count(uow, CharacterFaction, CharacterFaction.character_id == world.hero) == 0
    assert await count(uow, CharacterQuest, CharacterQuest.character_id == world.hero) == 0
    (entry,) = await audit_actions(uow, "purge")
    assert len(entry.changes["memberships"]) == 1
    assert len(entry.changes["assignments"]) == 1
    assert entry.actor_system == "lifecycle"
    assert entry.module == "character_management"


async def test_purging_a_user_keeps_their_characters_without_an_owner(
    uow: UowFactory, clock: FrozenClock, world: World
) -> None:
    await _delete(uow, world, "user")
    await purge(uow, now=clock.now() + timedelta(days=91))
    assert (
        await count(uow, Character, Character.id == world.hero, Character.owner_id.is_(None)) == 1
    )
    (entry,) = await audit_actions(uow, "purge")
    assert entry.changes["characters_orphaned"] == [world.hero]


async def test_a_dry_run_counts_but_changes_nothing(
    uow: UowFactory, clock: FrozenClock, world: World
) -> None:
    await _delete(uow, world, "quest")
    report = await purge(uow, now=clock.now() + timedelta(days=31), dry_run=True)
    assert report.counts["quest"] == 1
    assert await count(uow, Quest, Quest.id == world.quest) == 1
    assert await audit_actions(uow, "purge") == []


async def test_purge_runs_in_batches_and_is_idempotent(
    uow: UowFactory, clock: FrozenClock, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("visualdm.lifecycle.purge.LIFECYCLE_BATCH_SIZE", 2)
    async with uow() as u:
        made = [
            await characters.create_character(
                u, actor=world.player, data=CharacterCreate(name=f"c{i}", race="elf")
            )
            for i in range(5)
        ]
    async with uow() as u:
        for c in made:
            await characters.delete_character(u, actor=world.player, character_id=c.id)
    later = clock.now() + timedelta(days=31)
    assert (await purge(uow, now=later)).counts["character"] == 5
    assert len(await audit_actions(uow, "purge")) == 3
    assert (await purge(uow, now=later)).counts["character"] == 0
