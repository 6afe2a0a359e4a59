"""Quest services: quest CRUD and status lifecycle, and assigning quests to characters.

Creation runs as the Quest Generation System, everything else as the Quest Management System
(spec 2.3). Only game masters write; everyone reads, except that a `draft` quest is invisible
(NotFound) to users who may not edit quests. Characters and factions are read and rewarded
through their owners' services, never through their tables.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from visualdm.access.policy import authorize, user_may
from visualdm.access.principals import Actor, SystemActor, UserActor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.characters import service as characters
from visualdm.db.pagination import decode_cursor, next_cursor, page_size
from visualdm.db.retry import flush_versioned
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import Conflict, NotFound, RuleViolation, VersionConflict
from visualdm.events.bus import DomainEvent
from visualdm.factions import service as factions
from visualdm.ownership import Action, Domain, Module, Resource
from visualdm.quests import repository as repo
from visualdm.quests.models import CharacterQuest, Quest
from visualdm.quests.schemas import (
    AssignmentRead,
    QuestCreate,
    QuestFilter,
    QuestPage,
    QuestRead,
    QuestUpdate,
    Requirements,
    Rewards,
)

ENTITY = "quest"
ASSIGNMENT = "quest_assignment"
GENERATION = Module.QUEST_GENERATION
MANAGEMENT = Module.QUEST_MANAGEMENT
QUEST_SYSTEM = SystemActor("quest_management")
"""Who the Quest System reads characters and factions as (system-level authorization, spec 3)."""

# A quest's lifecycle; completed and failed are final. No way leads back to draft, so a quest
# that characters have taken never becomes invisible to its players.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"available"}),
    "available": frozenset({"active", "failed"}),
    "active": frozenset({"completed", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
}
ASSIGNABLE = ("available", "active")
OPEN = ("assigned", "in_progress")


def tags_of(quest_id: int) -> list[str]:
    """Cache tags a change to this quest invalidates (spec 5.4: it and character quest lists)."""
    return [f"quest:{quest_id}", f"quest:{quest_id}:characters"]


def assignment_tags(quest_id: int, character_id: int) -> list[str]:
    """Cache tags a change to this assignment invalidates: both sides' lists."""
    return [f"quest:{quest_id}:characters", f"character:{character_id}:quests"]


def to_read(row: Quest) -> QuestRead:
    """Return the API view of a quest row."""
    return QuestRead.model_validate(row)


def assignment_read(row: CharacterQuest) -> AssignmentRead:
    """Return the API view of an assignment row."""
    return AssignmentRead.model_validate(row)


def sees_drafts(actor: Actor) -> bool:
    """Whether `actor` may see draft quests: system callers and users who may edit quests."""
    return not isinstance(actor, UserActor) or user_may(actor, Resource.QUEST, Action.UPDATE)


def _snapshot(row: Quest) -> dict[str, Any]:
    return to_read(row).model_dump(mode="json")


def _after_write(uow: UnitOfWork, row: Quest, event: str, changes: Mapping[str, Any]) -> None:
    cache.write_through(
        uow,
        Domain.QUEST,
        row.id,
        _snapshot(row),
        version=row.version,
        tags=tags_of(row.id),
    )
    uow.publish(DomainEvent(event, ENTITY, row.id, uow.clock.now(), {"changed": sorted(changes)}))


def _check_transition(quest_id: int, old: str, new: str) -> None:
    if new != old and new not in TRANSITIONS[old]:
        allowed = ", ".join(sorted(TRANSITIONS[old])) or "nothing (it is final)"
        raise Conflict(
            f"quest {quest_id} cannot go from {old} to {new}; from {old} it may go to {allowed}",
            old=old,
            new=new,
        )


async def _check_factions(uow: UnitOfWork, requirements: Requirements, rewards: Rewards) -> None:
    """Raise RuleViolation if a faction the quest names does not exist (or is deleted)."""
    named = [("requirements", fid) for fid in requirements.factions]
    named += [("rewards", s.faction_id) for s in rewards.faction_standing]
    for place, faction_id in named:
        try:
            await factions.get_faction(uow, actor=QUEST_SYSTEM, faction_id=faction_id)
        except NotFound as exc:
            raise RuleViolation(
                f"faction {faction_id} in the quest's {place} does not exist",
                faction_id=faction_id,
                field=place,
            ) from exc


async def create_quest(uow: UnitOfWork, *, actor: Actor, data: QuestCreate) -> QuestRead:
    """Create a quest; RuleViolation if it names a faction that does not exist."""
    async with uow.acting_as(GENERATION):
        authorize(actor, GENERATION, Resource.QUEST, Action.CREATE)
        await _check_factions(uow, data.requirements, data.rewards)
        now = uow.clock.now()
        row = Quest(
            **data.model_dump(mode="json"),
            completed_at=now if data.status == "completed" else None,
            created_at=now,
            updated_at=now,
            last_active_at=now,
        )
        uow.session.add(row)
        await uow.session.flush()
        snapshot = _snapshot(row)
        audit.record_created(uow, actor=actor, entity=ENTITY, entity_id=row.id, values=snapshot)
        _after_write(uow, row, "quest.created", snapshot)
        return to_read(row)


async def get_quest(uow: UnitOfWork, *, actor: Actor, quest_id: int) -> QuestRead:
    """Return a live quest; NotFound if missing, soft-deleted, or a draft the actor may not see."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST, Action.READ)

        async def load() -> dict[str, Any] | None:
            row = await repo.get(uow.session, quest_id)
            return None if row is None else _snapshot(row)

        value = await cache.read_through(uow, Domain.QUEST, quest_id, load, tags=tags_of(quest_id))
        if value is None or (value["status"] == "draft" and not sees_drafts(actor)):
            raise NotFound(ENTITY, quest_id)
        return QuestRead.model_validate(value)


async def list_quests(
    uow: UnitOfWork,
    *,
    actor: Actor,
    filters: QuestFilter | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> QuestPage:
    """Return one page of live quests matching `filters` (no drafts for players), ordered by id."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST, Action.READ)
        size = page_size(limit)
        rows, more = await repo.list_page(
            uow.session,
            filters or QuestFilter(),
            after=decode_cursor(cursor),
            limit=size,
            include_drafts=sees_drafts(actor),
        )
        return QuestPage(
            items=[to_read(r) for r in rows],
            next_cursor=next_cursor([r.id for r in rows], more),
        )


async def update_quest(
    uow: UnitOfWork,
    *,
    actor: Actor,
    quest_id: int,
    changes: QuestUpdate,
    expected_version: int | None = None,
) -> QuestRead:
    """Apply a partial update; Conflict on a disallowed status change or a stale version."""
    async with uow.acting_as(MANAGEMENT):
        row = await repo.get_live(uow.session, quest_id, fresh=True)
        authorize(actor, MANAGEMENT, Resource.QUEST, Action.UPDATE)
        if expected_version is not None and row.version != expected_version:
            raise VersionConflict(ENTITY, quest_id, current_version=row.version)
        before = _snapshot(row)
        fields = changes.model_dump(mode="json", exclude_unset=True)
        for name, value in fields.items():
            if value is None and name != "max_assignees":
                raise RuleViolation(f"{name} cannot be null", field=name)
        now = uow.clock.now()
        if "status" in fields:
            _check_transition(quest_id, row.status, fields["status"])
            if fields["status"] == "completed" and row.status != "completed":
                row.completed_at = now
        # Only the parts given are checked: a stored part naming a since-deleted faction must
        # not block unrelated edits (completion reports that faction when it matters).
        await _check_factions(
            uow, changes.requirements or Requirements(), changes.rewards or Rewards()
        )
        if fields.get("max_assignees") is not None:
            taken = await repo.slots_taken(uow.session, quest_id)
            if fields["max_assignees"] < taken:
                raise RuleViolation(
                    f"max_assignees cannot drop below the {taken} characters holding quest "
                    f"{quest_id}",
                    max_assignees=fields["max_assignees"],
                    taken=taken,
                )
        for name, value in fields.items():
            setattr(row, name, value)
        row.updated_at = row.last_active_at = now
        await flush_versioned(uow, Quest, ENTITY, quest_id)
        changed = audit.diff(before, _snapshot(row))
        for bookkeeping in ("version", "updated_at", "last_active_at"):
            changed.pop(bookkeeping, None)
        audit.record(
            uow, actor=actor, action="update", entity=ENTITY, entity_id=row.id, changes=changed
        )
        _after_write(uow, row, "quest.updated", changed)
        return to_read(row)


async def _invalidate_character_lists(uow: UnitOfWork, quest_id: int) -> None:
    holders = await repo.assigned_character_ids(uow.session, quest_id)
    cache.invalidate(uow, [f"character:{cid}:quests" for cid in holders])


async def delete_quest(uow: UnitOfWork, *, actor: Actor, quest_id: int) -> None:
    """Soft-delete a quest; it and its assignments vanish from reads until restored or purged."""
    async with uow.acting_as(MANAGEMENT):
        row = await repo.get_live(uow.session, quest_id, fresh=True)
        authorize(actor, MANAGEMENT, Resource.QUEST, Action.DELETE)
        row.deleted_at = uow.clock.now()
        await flush_versioned(uow, Quest, ENTITY, quest_id)
        audit.record(
            uow,
            actor=actor,
            action="delete",
            entity=ENTITY,
            entity_id=row.id,
            changes={"record": _snapshot(row), "soft": True},
        )
        cache.evict(uow, Domain.QUEST, row.id, tags=tags_of(row.id), version=row.version)
        await _invalidate_character_lists(uow, quest_id)
        uow.publish(DomainEvent("quest.deleted", ENTITY, row.id, uow.clock.now()))


async def restore_quest(uow: UnitOfWork, *, actor: Actor, quest_id: int) -> QuestRead:
    """Bring back a soft-deleted quest that has not been purged yet; NotFound otherwise."""
    async with uow.acting_as(MANAGEMENT):
        row = await repo.get_deleted(uow.session, quest_id)
        authorize(actor, MANAGEMENT, Resource.QUEST, Action.UPDATE)
        deleted_at = row.deleted_at
        row.deleted_at = None
        row.updated_at = uow.clock.now()
        await flush_versioned(uow, Quest, ENTITY, quest_id)
        audit.record(
            uow,
            actor=actor,
            action="restore",
            entity=ENTITY,
            entity_id=row.id,
            changes={"deleted_at": {"old": deleted_at, "new": None}},
        )
        _after_write(uow, row, "quest.restored", {"deleted_at": None})
        await _invalidate_character_lists(uow, quest_id)
        return to_read(row)


# --- Assignments (character_quests) -------------------------------------------------------


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


async def _check_requirements(uow: UnitOfWork, quest: Quest, character_id: int) -> None:
    """Raise RuleViolation naming the first requirement of `quest` the character does not meet."""
    needs = Requirements.model_validate(quest.requirements)
    if needs.min_level is not None:
        character = await characters.get_character(
            uow, actor=QUEST_SYSTEM, character_id=character_id
        )
        if character.level < needs.min_level:
            raise RuleViolation(
                f"quest {quest.id} requires level {needs.min_level}; character {character_id} "
                f"is level {character.level}",
                requirement="min_level",
                required=needs.min_level,
                actual=character.level,
            )
    for faction_id in needs.factions:
        if not await factions.is_member(uow, character_id=character_id, faction_id=faction_id):
            raise RuleViolation(
                f"quest {quest.id} requires membership of faction {faction_id}; character "
                f"{character_id} is not a member (or the faction no longer exists)",
                requirement="factions",
                faction_id=faction_id,
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
        await _check_requirements(uow, quest, character_id)
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
    before: Mapping[str, Any],
    event: str,
    extra: Mapping[str, Any] | None = None,
) -> AssignmentRead:
    row.updated_at = uow.clock.now()
    await flush_versioned(uow, CharacterQuest, ASSIGNMENT, row.id)
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
        before = _assignment_snapshot(row)
        row.progress = {**row.progress, **progress}
        row.status = "in_progress"
        return await _save_assignment(uow, actor, row, before, "quest.progressed")


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
        before = _assignment_snapshot(row)
        row.status = "completed"
        row.completed_at = uow.clock.now()
        done = await _save_assignment(
            uow,
            actor,
            row,
            before,
            "quest.assignment_completed",
            {"rewards": rewards.model_dump(mode="json")},
        )
        await _grant_rewards(uow, actor, character_id, rewards)
        return done


async def _grant_rewards(
    uow: UnitOfWork, actor: Actor, character_id: int, rewards: Rewards
) -> None:
    if rewards.xp or rewards.gold or rewards.items:
        await characters.grant_rewards(
            uow,
            actor=actor,
            character_id=character_id,
            xp=rewards.xp,
            gold=rewards.gold,
            items=rewards.items,
        )
    for standing in rewards.faction_standing:
        await factions.adjust_standing(
            uow,
            actor=actor,
            faction_id=standing.faction_id,
            character_id=character_id,
            delta=standing.delta,
        )


async def _close(
    uow: UnitOfWork, actor: Actor, quest_id: int, character_id: int, status: str
) -> AssignmentRead:
    async with uow.acting_as(MANAGEMENT):
        _, row = await _open_assignment(uow, actor, quest_id, character_id)
        before = _assignment_snapshot(row)
        row.status = status
        return await _save_assignment(uow, actor, row, before, f"quest.assignment_{status}")


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
            rows = await repo.assignments_of_character(uow.session, character_id)
            return [_assignment_snapshot(r) for r in rows]

        values = await cache.read_list_through(
            uow,
            Domain.QUEST,
            f"character:{character_id}:quests",
            load,
            tags=[f"character:{character_id}:quests", f"character:{character_id}"],
        )
        return [AssignmentRead.model_validate(v) for v in values]


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
