"""Quest assignments: giving quests to characters, progress, completion, and closing them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.characters import service as characters
from visualdm.db.idset import IdSet
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.db.versioned import write_versioned
from visualdm.errors import Conflict, NotFound, RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.ownership import Action, Domain, Resource
from visualdm.quests import repository as repo
from visualdm.quests.models import CharacterQuest, Quest
from visualdm.quests.schemas import AssignmentRead, Rewards
from visualdm.quests.service._common import (
    ASSIGNMENT,
    ENTITY,
    MANAGEMENT,
    assignment_read,
    assignment_tags,
    sees_drafts,
)
from visualdm.quests.service._rules import check_requirements, grant_rewards

ASSIGNABLE = ("available", "active")
OPEN = ("assigned", "in_progress")


def _assignment_snapshot(row: CharacterQuest) -> dict[str, Any]:
    return assignment_read(row).model_dump(mode="json")


def _after_assignment_write(
    uow: UnitOfWork, row: CharacterQuest, event: str, changes: Mapping[str, Any]
) -> None:
    cache.invalidate(uow, assignment_tags(row.quest_id, row.character_id))
    uow.publish(
        DomainEvent(
            event,
            ASSIGNMENT,
            row.id,
            uow.clock.now(),
            {
                "quest_id": row.quest_id,
                "character_id": row.character_id,
                "status": row.status,
                "changed": sorted(changes),
            },
        )
    )


async def assign_quest(
    uow: UnitOfWork, *, actor: Actor, quest_id: int, character_id: int
) -> AssignmentRead:
    """Give a live, available or active quest to a live character who meets its requirements.

    Raises NotFound (quest or character), Conflict (quest not assignable, already assigned, no
    free slot) or RuleViolation (a requirement is not met). The quest's row lock serializes
    concurrent assignments of one quest, so its slots are never overbooked.
    """
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST_ASSIGNMENT, Action.CREATE)
        quest = await repo.get_live(uow.session, quest_id, fresh=True, lock=True)
        if quest.status not in ASSIGNABLE:
            raise Conflict(
                f"quest {quest_id} is {quest.status}; only available or active quests can be "
                "assigned",
                quest_id=quest_id,
                status=quest.status,
            )
        await characters.ensure_live(uow, [character_id])
        if await repo.get_assignment(uow.session, quest_id, character_id) is not None:
            raise Conflict(
                f"character {character_id} already has quest {quest_id}",
                quest_id=quest_id,
                character_id=character_id,
            )
        await check_requirements(uow, quest, character_id)
        if quest.max_assignees is not None:
            taken = await repo.slots_taken(uow.session, quest_id)
            if taken >= quest.max_assignees:
                raise Conflict(
                    f"quest {quest_id} is full: all {quest.max_assignees} slots are taken",
                    quest_id=quest_id,
                    max_assignees=quest.max_assignees,
                )
        now = uow.clock.now()
        row = CharacterQuest(
            quest_id=quest_id,
            character_id=character_id,
            status="assigned",
            progress={},
            assigned_at=now,
            updated_at=now,
        )
        await repo.add_assignment(uow.session, row)
        snapshot = _assignment_snapshot(row)
        audit.record_created(uow, actor=actor, entity=ASSIGNMENT, entity_id=row.id, values=snapshot)
        _after_assignment_write(uow, row, "quest.assigned", snapshot)
        return assignment_read(row)


async def _open_assignment(
    uow: UnitOfWork, actor: Actor, quest_id: int, character_id: int
) -> tuple[Quest, CharacterQuest]:
    """Authorize an assignment update and return the live quest and its open assignment."""
    authorize(actor, MANAGEMENT, Resource.QUEST_ASSIGNMENT, Action.UPDATE)
    quest = await repo.get_live(uow.session, quest_id)
    await characters.ensure_live(uow, [character_id])
    row = await repo.get_assignment_live(uow.session, quest_id, character_id, fresh=True)
    if row.status not in OPEN:
        raise Conflict(
            f"character {character_id}'s quest {quest_id} is already {row.status}",
            quest_id=quest_id,
            character_id=character_id,
            status=row.status,
        )
    return quest, row


async def _save_assignment(
    uow: UnitOfWork,
    actor: Actor,
    row: CharacterQuest,
    values: Mapping[str, Any],
    event: str,
    extra: Mapping[str, Any] | None = None,
) -> AssignmentRead:
    before = _assignment_snapshot(row)
    await write_versioned(uow, row, {**values, "updated_at": uow.clock.now()}, entity=ASSIGNMENT)
    changed: dict[str, Any] = audit.diff(before, _assignment_snapshot(row))
    for bookkeeping in ("version", "updated_at"):
        changed.pop(bookkeeping, None)
    audit.record(
        uow,
        actor=actor,
        action="update",
        entity=ASSIGNMENT,
        entity_id=row.id,
        changes={**changed, **(extra or {})},
    )
    _after_assignment_write(uow, row, event, changed)
    return assignment_read(row)


async def update_progress(
    uow: UnitOfWork,
    *,
    actor: Actor,
    quest_id: int,
    character_id: int,
    progress: Mapping[str, int],
) -> AssignmentRead:
    """Set the count of the given objectives (others keep theirs); RuleViolation if out of range."""
    async with uow.acting_as(MANAGEMENT):
        quest, row = await _open_assignment(uow, actor, quest_id, character_id)
        targets = {o["id"]: o["target"] for o in quest.objectives}
        for objective, count in progress.items():
            if objective not in targets:
                raise RuleViolation(
                    f"quest {quest_id} has no objective {objective!r}", objective=objective
                )
            if not isinstance(count, int) or not 0 <= count <= targets[objective]:
                raise RuleViolation(
                    f"progress on {objective!r} must be between 0 and {targets[objective]}",
                    objective=objective,
                    count=count,
                )
        values = {"progress": {**row.progress, **progress}, "status": "in_progress"}
        return await _save_assignment(uow, actor, row, values, "quest.progressed")


async def complete_assignment(
    uow: UnitOfWork, *, actor: Actor, quest_id: int, character_id: int
) -> AssignmentRead:
    """Mark the quest done for the character and grant its rewards, all in this transaction.

    Raises RuleViolation if an objective is unmet; any failure while granting rewards (a deleted
    faction, say) propagates and the unit of work rolls everything back.
    """
    async with uow.acting_as(MANAGEMENT):
        quest, row = await _open_assignment(uow, actor, quest_id, character_id)
        unmet = [o["id"] for o in quest.objectives if row.progress.get(o["id"], 0) < o["target"]]
        if unmet:
            raise RuleViolation(
                f"character {character_id} has not met objectives {', '.join(unmet)} of quest "
                f"{quest_id}",
                unmet=unmet,
            )
        rewards = Rewards.model_validate(quest.rewards)
        done = await _save_assignment(
            uow,
            actor,
            row,
            {"status": "completed", "completed_at": uow.clock.now()},
            "quest.assignment_completed",
            {"rewards": rewards.model_dump(mode="json")},
        )
        await grant_rewards(uow, actor, character_id, rewards)
        return done


async def _close(
    uow: UnitOfWork, actor: Actor, quest_id: int, character_id: int, status: str
) -> AssignmentRead:
    async with uow.acting_as(MANAGEMENT):
        _, row = await _open_assignment(uow, actor, quest_id, character_id)
        return await _save_assignment(
            uow, actor, row, {"status": status}, f"quest.assignment_{status}"
        )


async def fail_assignment(
    uow: UnitOfWork, *, actor: Actor, quest_id: int, character_id: int
) -> AssignmentRead:
    """Mark the character's open quest failed (its slot frees up); Conflict if already closed."""
    return await _close(uow, actor, quest_id, character_id, "failed")


async def abandon(
    uow: UnitOfWork, *, actor: Actor, quest_id: int, character_id: int
) -> AssignmentRead:
    """Mark the character's open quest abandoned (its slot frees up); Conflict if already closed."""
    return await _close(uow, actor, quest_id, character_id, "abandoned")


async def assignments_of_character(
    uow: UnitOfWork, *, actor: Actor, character_id: int
) -> list[AssignmentRead]:
    """Return a live character's assignments of live quests, oldest first; NotFound if not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST_ASSIGNMENT, Action.READ)
        await characters.ensure_live(uow, [character_id])

        async def load() -> list[Any]:
            rows = await repo.assignments_of_characters(
                uow.session, IdSet([character_id], uow.db.dialect)
            )
            return [_assignment_snapshot(r) for r in rows]

        values = await cache.read_list_through(
            uow,
            Domain.QUEST,
            f"character:{character_id}:quests",
            load,
            tags=[f"character:{character_id}:quests", f"character:{character_id}"],
        )
        return [AssignmentRead.model_validate(v) for v in values]


async def assignments_of_characters(
    uow: UnitOfWork, *, actor: Actor, character_ids: Sequence[int]
) -> list[AssignmentRead]:
    """Return live characters' assignments of live quests, by character, oldest first, in one
    query (uncached: for exports); NotFound for the first character that is not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST_ASSIGNMENT, Action.READ)
        ids = list(character_ids)
        if not ids:
            return []
        await characters.ensure_live(uow, ids)
        rows = await repo.assignments_of_characters(uow.session, IdSet(ids, uow.db.dialect))
        return [assignment_read(r) for r in rows]


async def assignments_of_quest(
    uow: UnitOfWork, *, actor: Actor, quest_id: int
) -> list[AssignmentRead]:
    """Return every assignment of a live quest, oldest first; NotFound as for get_quest."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST_ASSIGNMENT, Action.READ)
        quest = await repo.get_live(uow.session, quest_id)
        if quest.status == "draft" and not sees_drafts(actor):
            raise NotFound(ENTITY, quest_id)
        rows = await repo.assignments_of_quest(uow.session, quest_id)
        return [assignment_read(r) for r in rows]
