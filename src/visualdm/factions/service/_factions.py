"""Faction CRUD, soft delete and restore, and the acyclic parent hierarchy."""

from __future__ import annotations

from typing import Any

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.db.pagination import decode_cursor, next_cursor, page_size
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.db.versioned import write_versioned
from visualdm.errors import NotFound, RuleViolation, VersionConflict
from visualdm.events.bus import DomainEvent
from visualdm.factions import repository as repo
from visualdm.factions.models import Faction
from visualdm.factions.schemas import (
    FactionCreate,
    FactionFilter,
    FactionPage,
    FactionRead,
    FactionUpdate,
)
from visualdm.factions.service._common import CREATION, ENTITY, MANAGEMENT, tags_of, to_read
from visualdm.ownership import Action, Domain, Resource


def _snapshot(row: Faction) -> dict[str, Any]:
    return to_read(row).model_dump(mode="json")


def _after_write(uow: UnitOfWork, row: Faction, event: str, changes: dict[str, Any]) -> None:
    cache.write_through(
        uow,
        Domain.FACTION,
        row.id,
        _snapshot(row),
        version=row.version,
        tags=tags_of(row.id),
    )
    uow.publish(DomainEvent(event, ENTITY, row.id, uow.clock.now(), {"changed": sorted(changes)}))


async def _check_parent(uow: UnitOfWork, faction_id: int | None, parent_id: int) -> None:
    """Refuse a missing or deleted parent, the faction itself, or one of its descendants."""
    if parent_id == faction_id:
        raise RuleViolation(f"faction {faction_id} cannot be its own parent", parent_id=parent_id)
    if await repo.get(uow.session, parent_id) is None:
        raise NotFound(ENTITY, parent_id, f"parent faction {parent_id} not found")
    if faction_id is not None and faction_id in await repo.ancestor_ids(uow.session, parent_id):
        raise RuleViolation(
            f"making {parent_id} the parent of {faction_id} would create a cycle "
            f"({parent_id} is below {faction_id})",
            faction_id=faction_id,
            parent_id=parent_id,
        )


async def create_faction(uow: UnitOfWork, *, actor: Actor, data: FactionCreate) -> FactionRead:
    """Create a faction; NotFound if `data.parent_id` is not a live faction."""
    async with uow.acting_as(CREATION):
        authorize(actor, CREATION, Resource.FACTION, Action.CREATE)
        if data.parent_id is not None:
            await _check_parent(uow, None, data.parent_id)
        now = uow.clock.now()
        row = Faction(**data.model_dump(), created_at=now, updated_at=now)
        uow.session.add(row)
        await uow.session.flush()
        snapshot = _snapshot(row)
        audit.record_created(uow, actor=actor, entity=ENTITY, entity_id=row.id, values=snapshot)
        _after_write(uow, row, "faction.created", snapshot)
        return to_read(row)


async def get_faction(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> FactionRead:
    """Return a live faction; NotFound if missing or soft-deleted."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)

        async def load() -> dict[str, Any] | None:
            row = await repo.get(uow.session, faction_id)
            return None if row is None else _snapshot(row)

        value = await cache.read_through(
            uow, Domain.FACTION, faction_id, load, tags=tags_of(faction_id)
        )
        if value is None:
            raise NotFound(ENTITY, faction_id)
        return FactionRead.model_validate(value)


async def list_factions(
    uow: UnitOfWork,
    *,
    actor: Actor,
    filters: FactionFilter | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> FactionPage:
    """Return one page of live factions matching `filters`, ordered by id."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)
        size = page_size(limit)
        rows, more = await repo.list_page(
            uow.session, filters or FactionFilter(), after=decode_cursor(cursor), limit=size
        )
        return FactionPage(
            items=[to_read(r) for r in rows],
            next_cursor=next_cursor([r.id for r in rows], more),
        )


async def update_faction(
    uow: UnitOfWork,
    *,
    actor: Actor,
    faction_id: int,
    changes: FactionUpdate,
    expected_version: int | None = None,
) -> FactionRead:
    """Apply a partial update; RuleViolation on a cycle, VersionConflict if a version is stale."""
    given = changes.model_dump(exclude_unset=True)
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.UPDATE)
        if given.get("parent_id") is not None:
            # Taken before reading anything, so the ancestor walk sees every committed move.
            await repo.lock_tree(uow.session)
        row = await repo.get_live(uow.session, faction_id, fresh=True)
        if expected_version is not None and row.version != expected_version:
            raise VersionConflict(ENTITY, faction_id, current_version=row.version)
        before = _snapshot(row)
        for name, value in given.items():
            if value is None and name != "parent_id":
                raise RuleViolation(f"{name} cannot be null", field=name)
        if given.get("parent_id") is not None and given["parent_id"] != row.parent_id:
            await _check_parent(uow, faction_id, given["parent_id"])
        after = to_read(row).model_copy(update=given).model_dump(mode="json")
        changed = audit.diff(before, after)
        if not changed:
            return to_read(row)
        await write_versioned(uow, row, {**given, "updated_at": uow.clock.now()}, entity=ENTITY)
        audit.record(
            uow, actor=actor, action="update", entity=ENTITY, entity_id=row.id, changes=changed
        )
        _after_write(uow, row, "faction.updated", changed)
        return to_read(row)


async def delete_faction(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> None:
    """Soft-delete a faction; its children, relations and memberships are kept but hidden."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.DELETE)
        row = await repo.get_live(uow.session, faction_id, fresh=True)
        kept_children = [c.id for c in await repo.children_of(uow.session, faction_id)]
        members = await repo.member_count(uow.session, faction_id)
        await write_versioned(uow, row, {"deleted_at": uow.clock.now()}, entity=ENTITY)
        audit.record(
            uow,
            actor=actor,
            action="delete",
            entity=ENTITY,
            entity_id=row.id,
            changes={
                "record": _snapshot(row),
                "soft": True,
                "children_kept": kept_children,
                "memberships_kept": members,
            },
        )
        cache.evict(uow, Domain.FACTION, row.id, tags=tags_of(row.id), version=row.version)
        uow.publish(DomainEvent("faction.deleted", ENTITY, row.id, uow.clock.now()))


async def restore_faction(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> FactionRead:
    """Bring back a soft-deleted faction (with its hidden memberships and relations)."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.UPDATE)
        row = await repo.get_deleted(uow.session, faction_id)
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
        _after_write(uow, row, "faction.restored", {"deleted_at": None})
        return to_read(row)


async def ancestors(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> list[FactionRead]:
    """Return the live parent chain of a live faction, nearest first; a deleted one cuts it."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)
        await repo.get_live(uow.session, faction_id)
        chain = await repo.ancestor_ids(uow.session, faction_id)
        live = await repo.live_by_ids(uow.session, chain)
        result: list[FactionRead] = []
        for ancestor_id in chain:
            if ancestor_id not in live:
                break
            result.append(to_read(live[ancestor_id]))
        return result


async def children(uow: UnitOfWork, *, actor: Actor, faction_id: int) -> list[FactionRead]:
    """Return the live direct children of a live faction, by id; NotFound if it is not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.FACTION, Action.READ)
        await repo.get_live(uow.session, faction_id)
        return [to_read(r) for r in await repo.children_of(uow.session, faction_id)]
