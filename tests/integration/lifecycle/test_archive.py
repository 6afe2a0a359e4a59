"""Archival (spec 2.1-2.3): inactivity boundaries, restore round trip, manifest, dry run."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from tests.conftest import UowFactory
from tests.integration.lifecycle.conftest import World, audit_actions, count
from visualdm.characters import service as characters
from visualdm.characters.models import Character
from visualdm.clock import FrozenClock
from visualdm.factions.models import CharacterFaction, Faction
from visualdm.lifecycle.archive import archive, list_batches, restore
from visualdm.lifecycle.coldstore import ColdStore
from visualdm.lifecycle.models import ArchivedRecord
from visualdm.ownership import YEAR, Domain, policy
from visualdm.quests import service as quests
from visualdm.quests.models import CharacterQuest, Quest
from visualdm.quests.schemas import QuestCreate, QuestUpdate

SECOND = timedelta(seconds=1)


@pytest.fixture
def store(tmp_path: Path) -> ColdStore:
    """Cold storage in a temporary directory."""
    return ColdStore(str(tmp_path / "archive"))


async def test_a_character_is_archived_one_second_after_a_year_inactive_and_not_before(
    uow: UowFactory, clock: FrozenClock, world: World, store: ColdStore
) -> None:
    last_active = clock.now()
    report = await archive(uow, store, now=last_active + YEAR - SECOND)
    assert report.counts["character"] == 0
    assert await count(uow, Character, Character.id == world.hero) == 1

    report = await archive(uow, store, now=last_active + YEAR + SECOND)
    assert report.counts == {"character": 1, "quest": 0}
    assert await count(uow, Character, Character.id == world.hero) == 0
    assert await count(uow, CharacterFaction, CharacterFaction.character_id == world.hero) == 0
    assert await count(uow, ArchivedRecord, ArchivedRecord.record_id == world.hero) == 1
    assert await count(uow, Faction) == 1, "factions are never archived"
    (entry,) = await audit_actions(uow, "archive")
    assert entry.changes["records"] == [world.hero]
    assert entry.changes["dependants"]["character_factions"] == 1


async def test_a_completed_quest_is_archived_after_90_days_inactive_and_an_open_one_never(
    uow: UowFactory, clock: FrozenClock, world: World, store: ColdStore
) -> None:
    async with uow() as u:
        open_one = await quests.create_quest(
            u, actor=world.gm, data=QuestCreate(title="Open", status="available")
        )
        await quests.update_quest(
            u, actor=world.gm, quest_id=world.quest, changes=QuestUpdate(status="active")
        )
    async with uow() as u:
        await quests.update_quest(
            u, actor=world.gm, quest_id=world.quest, changes=QuestUpdate(status="completed")
        )
    age = policy(Domain.QUEST).archive_after_inactive
    assert age is not None
    assert (await archive(uow, store, now=clock.now() + age - SECOND)).counts["quest"] == 0
    assert (await archive(uow, store, now=clock.now() + age + SECOND)).counts["quest"] == 1
    assert await count(uow, Quest, Quest.id == world.quest) == 0
    assert await count(uow, Quest, Quest.id == open_one.id) == 1
    assert await count(uow, CharacterQuest, CharacterQuest.quest_id == world.quest) == 0


async def test_restore_brings_a_character_back_intact_with_memberships_and_assignments(
    uow: UowFactory, clock: FrozenClock, world: World, store: ColdStore
) -> None:
    async with uow() as u:
        before = await characters.get_character(u, actor=world.gm, character_id=world.hero)
    clock.advance(YEAR + SECOND)
    await archive(uow, store, now=clock.now())
    result = await restore(uow, store, actor=world.gm, kind="character", record_id=world.hero)
    assert result["restored"] == {"character_factions": 1, "character_quests": 1}
    assert result["skipped"] == {}
    async with uow() as u:
        after = await characters.get_character(u, actor=world.gm, character_id=world.hero)
    bookkeeping = {"last_active_at", "updated_at", "version"}
    assert after.model_dump(exclude=bookkeeping) == before.model_dump(exclude=bookkeeping)
    assert await count(uow, CharacterFaction, CharacterFaction.character_id == world.hero) == 1
    assert await count(uow, CharacterQuest, CharacterQuest.character_id == world.hero) == 1
    assert await count(uow, ArchivedRecord) == 0, "a restored record is no longer archived"
    # Restoring counts as activity: the next run leaves it alone.
    assert (await archive(uow, store, now=clock.now())).counts["character"] == 0


async def test_the_manifest_lists_each_file_with_its_count_and_checksum(
    uow: UowFactory, clock: FrozenClock, world: World, store: ColdStore
) -> None:
    await archive(uow, store, now=clock.now() + YEAR + SECOND)
    manifest = store.read_manifest()
    (entry,) = manifest["files"]
    assert entry["rows"] == 1
    assert manifest["totals"] == {"character": 1}
    assert store.verify(entry["path"], entry["sha256"]).count == 1
    (batch,) = await list_batches(uow)
    assert batch["sha256"] == entry["sha256"]


async def test_an_archive_dry_run_changes_nothing(
    uow: UowFactory, clock: FrozenClock, world: World, store: ColdStore
) -> None:
    report = await archive(uow, store, now=clock.now() + YEAR + SECOND, dry_run=True)
    assert report.counts["character"] == 1
    assert await count(uow, Character, Character.id == world.hero) == 1
    assert store.read_manifest() == {}
    assert await audit_actions(uow, "archive") == []
