"""Quest assignment on SQLite and PostgreSQL: assigning, requirements, slots, progress, closing."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select

from tests.conftest import UowFactory
from tests.integration.quests.conftest import Cast, audit_of, make_hero, make_quest
from visualdm.characters import service as characters
from visualdm.errors import Conflict, NotFound, PermissionDenied, RuleViolation
from visualdm.events.bus import DomainEvent, InProcessBus
from visualdm.quests import service
from visualdm.quests.models import CharacterQuest
from visualdm.quests.schemas import AssignmentRead, QuestUpdate

OBJECTIVES = [
    {"id": "wolves", "description": "Slay wolves", "target": 3},
    {"id": "report", "description": "Report back", "target": 1},
]


async def _assign(uow: UowFactory, cast: Cast, quest_id: int, character_id: int) -> int:
    async with uow() as u:
        made = await service.assign_quest(
            u, actor=cast.gm, quest_id=quest_id, character_id=character_id
        )
    return made.id


async def _rows(uow: UowFactory) -> int:
    async with uow() as u:
        return int(await u.session.scalar(select(func.count()).select_from(CharacterQuest)) or 0)


async def test_a_gm_assigns_a_quest_and_both_sides_list_it(uow: UowFactory, cast: Cast) -> None:
    qid = await make_quest(uow, cast.gm)
    hero = await make_hero(uow, cast.alice)
    aid = await _assign(uow, cast, qid, hero)
    async with uow() as u:
        mine = await service.assignments_of_character(u, actor=cast.alice, character_id=hero)
        theirs = await service.assignments_of_quest(u, actor=cast.bob, quest_id=qid)
    assert [(a.id, a.quest_id, a.status, a.progress) for a in mine] == [(aid, qid, "assigned", {})]
    assert [a.character_id for a in theirs] == [hero]
    entries = await audit_of(uow, "quest_assignment", aid)
    assert [e.action for e in entries] == ["create"]
    assert entries[0].module == "quest_management"
    assert entries[0].changes["character_id"] == {"old": None, "new": hero}


async def test_assigning_twice_is_a_conflict_not_an_integrity_error(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm)
    hero = await make_hero(uow, cast.alice)
    await _assign(uow, cast, qid, hero)
    with pytest.raises(Conflict, match=f"character {hero} already has quest {qid}"):
        await _assign(uow, cast, qid, hero)
    assert await _rows(uow) == 1


async def test_unknown_or_deleted_quests_and_characters_are_not_found(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm)
    gone_quest = await make_quest(uow, cast.gm, "Gone")
    hero = await make_hero(uow, cast.alice)
    gone_hero = await make_hero(uow, cast.alice, "Gone")
    async with uow() as u:
        await service.delete_quest(u, actor=cast.gm, quest_id=gone_quest)
        await characters.delete_character(u, actor=cast.gm, character_id=gone_hero)
    for quest_id, character_id in [(9999, hero), (gone_quest, hero), (qid, 9999), (qid, gone_hero)]:
        with pytest.raises(NotFound):
            await _assign(uow, cast, quest_id, character_id)
    async with uow() as u:
        with pytest.raises(NotFound):
            await service.assignments_of_character(u, actor=cast.gm, character_id=gone_hero)
        with pytest.raises(NotFound):
            await service.assignments_of_quest(u, actor=cast.gm, quest_id=gone_quest)
        with pytest.raises(NotFound, match=f"character {hero} does not have quest {qid}"):
            await service.update_progress(
                u, actor=cast.gm, quest_id=qid, character_id=hero, progress={}
            )
    assert await _rows(uow) == 0


@pytest.mark.parametrize("status", ["draft", "completed", "failed"])
async def test_only_available_or_active_quests_can_be_assigned(
    uow: UowFactory, cast: Cast, status: str
) -> None:
    qid = await make_quest(uow, cast.gm, status=status)
    hero = await make_hero(uow, cast.alice)
    with pytest.raises(Conflict, match=f"quest {qid} is {status}"):
        await _assign(uow, cast, qid, hero)
    active = await make_quest(uow, cast.gm, "Running", status="active")
    await _assign(uow, cast, active, hero)


async def test_players_may_read_assignments_but_not_change_them(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm, objectives=OBJECTIVES)
    hero = await make_hero(uow, cast.alice)
    other = await make_hero(uow, cast.alice, "Brin")
    await _assign(uow, cast, qid, hero)
    async with uow() as u:
        with pytest.raises(PermissionDenied):
            await service.assign_quest(u, actor=cast.alice, quest_id=qid, character_id=other)
        with pytest.raises(PermissionDenied):
            await service.update_progress(
                u, actor=cast.alice, quest_id=qid, character_id=hero, progress={"wolves": 3}
            )
        with pytest.raises(PermissionDenied):
            await service.complete_assignment(u, actor=cast.alice, quest_id=qid, character_id=hero)
        with pytest.raises(PermissionDenied):
            await service.abandon(u, actor=cast.alice, quest_id=qid, character_id=hero)
        assert len(await service.assignments_of_quest(u, actor=cast.alice, quest_id=qid)) == 1


async def test_a_character_below_the_minimum_level_is_refused_with_a_clear_error(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm, requirements={"min_level": 3})
    novice = await make_hero(uow, cast.alice, "Novice", level=2)
    veteran = await make_hero(uow, cast.alice, "Veteran", level=3)
    with pytest.raises(RuleViolation, match=f"requires level 3; character {novice} is level 2"):
        await _assign(uow, cast, qid, novice)
    await _assign(uow, cast, qid, veteran)
    assert await _rows(uow) == 1


async def test_a_full_quest_refuses_more_characters_until_a_slot_frees_up(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm, max_assignees=2)
    heroes = [await make_hero(uow, cast.alice, f"Hero {i}") for i in range(3)]
    await _assign(uow, cast, qid, heroes[0])
    await _assign(uow, cast, qid, heroes[1])
    with pytest.raises(Conflict, match=f"quest {qid} is full: all 2 slots are taken"):
        await _assign(uow, cast, qid, heroes[2])
    with pytest.raises(RuleViolation, match="cannot drop below the 2 characters"):
        async with uow() as u:
            await service.update_quest(
                u, actor=cast.gm, quest_id=qid, changes=QuestUpdate(max_assignees=1)
            )
    async with uow() as u:
        left = await service.abandon(u, actor=cast.gm, quest_id=qid, character_id=heroes[0])
    assert left.status == "abandoned"
    await _assign(uow, cast, qid, heroes[2])
    assert await _rows(uow) == 3


async def test_progress_is_validated_merged_and_audited(uow: UowFactory, cast: Cast) -> None:
    qid = await make_quest(uow, cast.gm, objectives=OBJECTIVES)
    hero = await make_hero(uow, cast.alice)
    aid = await _assign(uow, cast, qid, hero)
    async with uow() as u:
        first = await service.update_progress(
            u, actor=cast.gm, quest_id=qid, character_id=hero, progress={"wolves": 2}
        )
        second = await service.update_progress(
            u, actor=cast.gm, quest_id=qid, character_id=hero, progress={"report": 1}
        )
    assert (first.status, first.progress) == ("in_progress", {"wolves": 2})
    assert second.progress == {"wolves": 2, "report": 1}
    assert (await audit_of(uow, "quest_assignment", aid))[1].changes == {
        "status": {"old": "assigned", "new": "in_progress"},
        "progress": {"old": {}, "new": {"wolves": 2}},
    }
    async with uow() as u:
        with pytest.raises(RuleViolation, match="has no objective 'bears'"):
            await service.update_progress(
                u, actor=cast.gm, quest_id=qid, character_id=hero, progress={"bears": 1}
            )
        with pytest.raises(RuleViolation, match="between 0 and 3"):
            await service.update_progress(
                u, actor=cast.gm, quest_id=qid, character_id=hero, progress={"wolves": 4}
            )


async def test_completion_needs_every_objective_met(uow: UowFactory, cast: Cast) -> None:
    qid = await make_quest(uow, cast.gm, objectives=OBJECTIVES, rewards={"xp": 100})
    hero = await make_hero(uow, cast.alice)
    await _assign(uow, cast, qid, hero)
    async with uow() as u:
        await service.update_progress(
            u, actor=cast.gm, quest_id=qid, character_id=hero, progress={"wolves": 3}
        )
    with pytest.raises(RuleViolation, match="has not met objectives report"):
        async with uow() as u:
            await service.complete_assignment(u, actor=cast.gm, quest_id=qid, character_id=hero)
    async with uow() as u:
        got = await characters.get_character(u, actor=cast.gm, character_id=hero)
        (mine,) = await service.assignments_of_character(u, actor=cast.gm, character_id=hero)
    assert (got.xp, mine.status) == (0, "in_progress")


async def test_completion_grants_xp_gold_and_items_in_the_same_transaction(
    uow: UowFactory, cast: Cast
) -> None:
    rewards = {"xp": 1000, "gold": 25, "items": ["wolf pelt", {"name": "amulet", "charges": 3}]}
    qid = await make_quest(uow, cast.gm, rewards=rewards)
    hero = await make_hero(uow, cast.alice)
    aid = await _assign(uow, cast, qid, hero)
    async with uow() as u:
        done = await service.complete_assignment(u, actor=cast.gm, quest_id=qid, character_id=hero)
    assert (done.status, done.completed_at is not None) == ("completed", True)
    async with uow() as u:
        got = await characters.get_character(u, actor=cast.alice, character_id=hero)
    assert (got.xp, got.level, got.gold) == (1000, 3, 25)
    assert got.inventory == rewards["items"]
    granted = (await audit_of(uow, "character", hero))[-1]
    assert granted.module == "character_management"
    assert granted.changes["gold"] == {"old": 0, "new": 25}
    completion = (await audit_of(uow, "quest_assignment", aid))[-1]
    assert completion.changes["status"] == {"old": "assigned", "new": "completed"}
    assert completion.changes["rewards"]["xp"] == 1000
    with pytest.raises(Conflict, match="already completed"):
        async with uow() as u:
            await service.complete_assignment(u, actor=cast.gm, quest_id=qid, character_id=hero)


@pytest.mark.parametrize("close", [service.fail_assignment, service.abandon])
async def test_a_closed_assignment_takes_no_more_progress(
    uow: UowFactory, cast: Cast, close: Callable[..., Awaitable[AssignmentRead]]
) -> None:
    qid = await make_quest(uow, cast.gm, objectives=OBJECTIVES)
    hero = await make_hero(uow, cast.alice)
    aid = await _assign(uow, cast, qid, hero)
    async with uow() as u:
        closed = await close(u, actor=cast.gm, quest_id=qid, character_id=hero)
    with pytest.raises(Conflict, match=f"already {closed.status}"):
        async with uow() as u:
            await service.update_progress(
                u, actor=cast.gm, quest_id=qid, character_id=hero, progress={"wolves": 1}
            )
    assert (await audit_of(uow, "quest_assignment", aid))[-1].changes == {
        "status": {"old": "assigned", "new": closed.status}
    }


async def test_deleting_a_quest_hides_its_assignments_until_restored(
    uow: UowFactory, cast: Cast
) -> None:
    qid = await make_quest(uow, cast.gm)
    hero = await make_hero(uow, cast.alice)
    await _assign(uow, cast, qid, hero)
    async with uow() as u:
        await service.delete_quest(u, actor=cast.gm, quest_id=qid)
        assert await service.assignments_of_character(u, actor=cast.gm, character_id=hero) == []
        await service.restore_quest(u, actor=cast.gm, quest_id=qid)
        restored = await service.assignments_of_character(u, actor=cast.gm, character_id=hero)
    assert [a.quest_id for a in restored] == [qid]


async def test_reward_grants_must_give_something_positive(uow: UowFactory, cast: Cast) -> None:
    hero = await make_hero(uow, cast.alice)
    async with uow() as u:
        with pytest.raises(RuleViolation, match="must give"):
            await characters.grant_rewards(u, actor=cast.gm, character_id=hero)
        with pytest.raises(RuleViolation, match="cannot be negative"):
            await characters.grant_rewards(u, actor=cast.gm, character_id=hero, gold=-5)
        with pytest.raises(PermissionDenied):
            await characters.grant_rewards(u, actor=cast.bob, character_id=hero, gold=5)


async def test_racing_assignments_never_overbook_the_last_slot(uow: UowFactory, cast: Cast) -> None:
    qid = await make_quest(uow, cast.gm, max_assignees=1)
    heroes = [await make_hero(uow, cast.alice, f"Racer {i}") for i in range(3)]
    results = await asyncio.gather(
        *(_assign(uow, cast, qid, hero) for hero in heroes), return_exceptions=True
    )
    assert sum(isinstance(r, int) for r in results) == 1
    assert all(isinstance(r, int | Conflict) for r in results)
    assert await _rows(uow) == 1


async def test_assignment_events_name_both_sides_and_follow_the_commit(
    uow: UowFactory, cast: Cast, bus: InProcessBus
) -> None:
    seen: list[DomainEvent] = []

    async def collect(event: DomainEvent) -> None:
        seen.append(event)

    qid = await make_quest(uow, cast.gm)
    hero = await make_hero(uow, cast.alice)
    bus.subscribe("quest.", collect)
    aid = await _assign(uow, cast, qid, hero)
    async with uow() as u:
        await service.complete_assignment(u, actor=cast.gm, quest_id=qid, character_id=hero)
    assert [(e.name, e.entity, e.entity_id) for e in seen] == [
        ("quest.assigned", "quest_assignment", aid),
        ("quest.assignment_completed", "quest_assignment", aid),
    ]
    assert (seen[-1].payload["quest_id"], seen[-1].payload["character_id"]) == (qid, hero)
