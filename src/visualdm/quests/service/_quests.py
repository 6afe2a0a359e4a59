"""Quest CRUD, soft delete and restore, and the quest status lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.db.pagination import decode_cursor, next_cursor, page_size
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.db.versioned import write_versioned
from visualdm.errors import Conflict, NotFound, RuleViolation, VersionConflict
from visualdm.events.bus import DomainEvent
from visualdm.factions import service as factions
from visualdm.ownership import Action, Domain, Resource
from visualdm.quests import repository as repo
from visualdm.quests.models import Quest
from visualdm.quests.schemas import (
    QuestCreate,
    QuestFilter,
    QuestPage,
    QuestRead,
    QuestUpdate,
    Requirements,
    Rewards,
)
from visualdm.quests.service._common import (
    ENTITY,
    GENERATION,
    MANAGEMENT,
    QUEST_SYSTEM,
    sees_drafts,
    tags_of,
    to_read,
)

# A quest's lifecycle; completed and failed are final. No way leads back to draft, so a quest
# that characters have taken never becomes invisible to its players.
TRANSITIONS: dict[str, frozenset[str]] = {
    "draft": frozenset({"available"}),
    "available": frozenset({"active", "failed"}),
    "active": frozenset({"completed", "failed"}),
    "completed": frozenset(),
    "failed": frozenset(),
}


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


def _hide_drafts(actor: Actor, row: Quest) -> None:
    """A draft is NotFound to whoever may not see drafts, even when they try to change it.

    Checked before the permission check, so a refusal cannot reveal that the draft exists.
    """
    if row.status == "draft" and not sees_drafts(actor):
        raise NotFound(ENTITY, row.id)


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
        _hide_drafts(actor, row)
        authorize(actor, MANAGEMENT, Resource.QUEST, Action.UPDATE)
        if expected_version is not None and row.version != expected_version:
            raise VersionConflict(ENTITY, quest_id, current_version=row.version)
        before = _snapshot(row)
        fields = changes.model_dump(mode="json", exclude_unset=True)
        for name, value in fields.items():
            if value is None and name != "max_assignees":
                raise RuleViolation(f"{name} cannot be null", field=name)
        now = uow.clock.now()
        stamps: dict[str, Any] = {}
        if "status" in fields:
            _check_transition(quest_id, row.status, fields["status"])
            if fields["status"] == "completed" and row.status != "completed":
                stamps["completed_at"] = now
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
        await write_versioned(
            uow, row, {**fields, **stamps, "updated_at": now, "last_active_at": now}, entity=ENTITY
        )
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
        _hide_drafts(actor, row)
        authorize(actor, MANAGEMENT, Resource.QUEST, Action.DELETE)
        await write_versioned(uow, row, {"deleted_at": uow.clock.now()}, entity=ENTITY)
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
        values = {"deleted_at": None, "updated_at": uow.clock.now()}
        await write_versioned(uow, row, values, entity=ENTITY)
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
