"""Quests and factions on SQLite and PostgreSQL: faction requirements, standing, atomicity."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from tests.conftest import UowFactory
from tests.integration.quests.conftest import Cast, audit_of, make_hero, make_quest
from visualdm.audit.models import AuditEntry
from visualdm.characters import service as characters
from visualdm.errors import NotFound, RuleViolation
from visualdm.factions import service as factions
from visualdm.factions.schemas import FactionCreate
from visualdm.quests import service
from visualdm.quests.schemas import QuestUpdate


async def _faction(uow: UowFactory, cast: Cast, name: str) -> int:
    async with uow() as u:
        return (await factions.create_faction(u, actor=cast.gm, data=FactionCreate(name=name))).id


async def _delete_faction(uow: UowFactory, cast: Cast, faction_id: int) -> None:
    async with uow() as u:
        await factions.delete_faction(u, actor=cast.gm, faction_id=faction_id)


async def _join(uow: UowFactory, cast: Cast, faction_id: int, character_id: int) -> None:
    async with uow() as u:
        await factions.join_faction(
            u, actor=cast.gm, faction_id=faction_id, character_id=character_id
        )


async def _standings(uow: UowFactory, cast: Cast, character_id: int) -> dict[int, int]:
    async with uow() as u:
        held = await factions.memberships_of(u, actor=cast.gm, character_id=character_id)
    return {m.faction_id: m.standing for m in held}


async def _audit_count(uow: UowFactory) -> int:
    async with uow() as u:
        return int(await u.session.scalar(select(func.count()).select_from(AuditEntry)) or 0)


async def test_quests_may_only_name_live_factions(uow: UowFactory, cast: Cast) -> None:
    wardens = await _faction(uow, cast, "Wardens")
    gone = await _faction(uow, cast, "Gone")
    await _delete_faction(uow, cast, gone)
    with pytest.raises(RuleViolation, match="faction 9999 in the quest's requirements"):
        await make_quest(uow, cast.gm, requirements={"factions": [9999]})
    with pytest.raises(RuleViolation, match=f"faction {gone} in the quest's rewards"):
        await make_quest(
            uow, cast.gm, rewards={"faction_standing": [{"faction_id": gone, "delta": 5}]}
        )
    qid = await make_quest(uow, cast.gm, requirements={"factions": [wardens]})
    with pytest.raises(RuleViolation, match=f"faction {gone} in the quest's rewards"):
        async with uow() as u:
            await service.update_quest(
                u,
                actor=cast.gm,
                quest_id=qid,
                changes=QuestUpdate.model_validate(
                    {"rewards": {"faction_standing": [{"faction_id": gone, "delta": 5}]}}
                ),
            )
    async with uow() as u:
        quests = await service.list_quests(u, actor=cast.gm)
    assert [(q.id, q.rewards.faction_standing, q.version) for q in quests.items] == [(qid, [], 1)]


async def test_a_character_outside_a_required_faction_is_refused_with_a_clear_error(
    uow: UowFactory, cast: Cast
) -> None:
    wardens = await _faction(uow, cast, "Wardens")
    qid = await make_quest(uow, cast.gm, requirements={"factions": [wardens]})
    outsider = await make_hero(uow, cast.alice, "Outsider")
    member = await make_hero(uow, cast.alice, "Member")
    await _join(uow, cast, wardens, member)
    with pytest.raises(
        RuleViolation, match=f"requires membership of faction {wardens}; character {outsider}"
    ):
        async with uow() as u:
            await service.assign_quest(u, actor=cast.gm, quest_id=qid, character_id=outsider)
    async with uow() as u:
        taken = await service.assign_quest(u, actor=cast.gm, quest_id=qid, character_id=member)
    assert taken.character_id == member


async def test_completion_changes_standing_with_every_rewarding_faction(
    uow: UowFactory, cast: Cast
) -> None:
    wardens = await _faction(uow, cast, "Wardens")
    thieves = await _faction(uow, cast, "Thieves")
    rewards = {
        "xp": 300,
        "faction_standing": [
            {"faction_id": wardens, "delta": 10},
            {"faction_id": thieves, "delta": -15},
        ],
    }
    qid = await make_quest(uow, cast.gm, rewards=rewards)
    hero = await make_hero(uow, cast.alice)
    await _join(uow, cast, wardens, hero)
    async with uow() as u:
        await service.assign_quest(u, actor=cast.gm, quest_id=qid, character_id=hero)
        await service.complete_assignment(u, actor=cast.gm, quest_id=qid, character_id=hero)
    # Standing with a faction the character did not belong to makes it an associate.
    assert await _standings(uow, cast, hero) == {wardens: 10, thieves: -15}
    async with uow() as u:
        assert (await characters.get_character(u, actor=cast.gm, character_id=hero)).xp == 300


async def test_a_failed_reward_rolls_back_the_whole_completion(uow: UowFactory, cast: Cast) -> None:
    wardens = await _faction(uow, cast, "Wardens")
    doomed = await _faction(uow, cast, "Doomed")
    rewards = {
        "xp": 1000,
        "gold": 50,
        "items": ["badge"],
        "faction_standing": [
            {"faction_id": wardens, "delta": 10},
            {"faction_id": doomed, "delta": 5},
        ],
    }
    qid = await make_quest(uow, cast.gm, rewards=rewards)
    hero = await make_hero(uow, cast.alice)
    await _join(uow, cast, wardens, hero)
    async with uow() as u:
        aid = (await service.assign_quest(u, actor=cast.gm, quest_id=qid, character_id=hero)).id
    # The reward faction disappears between the quest's creation and its completion.
    await _delete_faction(uow, cast, doomed)
    audit_before = await _audit_count(uow)
    with pytest.raises(NotFound, match=f"faction {doomed}"):
        async with uow() as u:
            await service.complete_assignment(u, actor=cast.gm, quest_id=qid, character_id=hero)
    async with uow() as u:
        got = await characters.get_character(u, actor=cast.gm, character_id=hero)
        (assignment,) = await service.assignments_of_quest(u, actor=cast.gm, quest_id=qid)
    assert (got.xp, got.level, got.gold, got.inventory, got.version) == (0, 1, 0, [], 1)
    assert (assignment.status, assignment.completed_at, assignment.version) == ("assigned", None, 1)
    assert await _standings(uow, cast, hero) == {wardens: 0}
    assert await _audit_count(uow) == audit_before
    assert [e.action for e in await audit_of(uow, "quest_assignment", aid)] == ["create"]
