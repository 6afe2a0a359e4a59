"""Spatial services: place, move and remove world entities; rebuild the index from the database.

Creation runs as the World Generation System, changes and deletions as the Spatial Management
System (spec 2.4); each call authorizes the module and the user and audits what it writes. The
index changes only after the commit, through the same last-writer-wins path remote changes take.
Queries live in queries.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.errors import RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.ownership import Action, Module, Resource
from visualdm.spatial import repository as repo
from visualdm.spatial.collisions import resolve
from visualdm.spatial.columns import Columns
from visualdm.spatial.index import Placed, check_finite, check_placed, entity_key
from visualdm.spatial.models import WorldEntity
from visualdm.spatial.schemas import (
    EntityRead,
    MoveResult,
    RebuildReport,
    WorldEntityCreate,
    WorldEntityUpdate,
)
from visualdm.spatial.tiles import change_tiles, tag
from visualdm.spatial.world import MOVED, PLACED, REMOVED, World, character_placed

ENTITY = repo.ENTITY
CREATION = Module.WORLD_GENERATION
MANAGEMENT = Module.SPATIAL_MANAGEMENT
_STORED_NEWER = "a newer position is already stored"


def placed_of(row: WorldEntity) -> Placed:
    """The index entry of a world_entities row."""
    return Placed(
        entity_key(row.id),
        row.kind,
        row.x,
        row.y,
        row.width,
        row.height,
        row.is_solid,
        row.position_updated_at,
    )


def _stamp(uow: UnitOfWork, at: datetime | None) -> datetime:
    at = at or uow.clock.now()
    if at.tzinfo is None:
        raise RuleViolation("position timestamps must carry a time zone")
    return at


def _after_change(uow: UnitOfWork, world: World, before: Placed | None, event: DomainEvent) -> None:
    """After commit: apply `event` here, drop the touched tiles everywhere, publish it."""
    after = Placed.from_json(event.payload["entity"]) if "entity" in event.payload else None
    cache.invalidate(uow, [tag(t) for t in change_tiles(before, after)])

    async def apply() -> None:
        world.apply(event)

    uow.after_commit(apply)
    uow.publish(event)


async def create_entity(
    uow: UnitOfWork, world: World, *, actor: Actor, data: WorldEntityCreate
) -> EntityRead:
    """Place a new world entity; RuleViolation for bad coordinates, sizes or bounds."""
    async with uow.acting_as(CREATION):
        authorize(actor, CREATION, Resource.SPATIAL_INDEX, Action.CREATE)
        at = _stamp(uow, data.at)
        check_placed(
            world.bounds,
            Placed("new", data.kind, data.x, data.y, data.width, data.height, data.is_solid, at),
        )
        now = uow.clock.now()
        fields = data.model_dump(exclude={"at"})
        row = WorldEntity(**fields, position_updated_at=at, created_at=now, updated_at=now)
        uow.session.add(row)
        await uow.session.flush()
        placed = placed_of(row)
        audit.record_created(
            uow, actor=actor, entity=ENTITY, entity_id=row.id, values=data.model_dump(mode="json")
        )
        event = DomainEvent(PLACED, ENTITY, row.id, now, {"entity": placed.to_json()})
        _after_change(uow, world, None, event)
        return EntityRead.of(placed, name=row.name)


async def get_entity(uow: UnitOfWork, *, actor: Actor, entity_id: int) -> EntityRead:
    """Return one world entity; NotFound if there is none."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.SPATIAL_INDEX, Action.READ)
        row = await repo.get(uow.session, entity_id)
        return EntityRead.of(placed_of(row), name=row.name)


async def update_entity(
    uow: UnitOfWork, world: World, *, actor: Actor, entity_id: int, changes: WorldEntityUpdate
) -> MoveResult:
    """Move or change an entity (last-writer-wins by `at`), pushed out of solid entities.

    An update older than the stored one is ignored and reported; raises NotFound, RuleViolation
    (bad values) or Blocked (no free position near the requested one).
    """
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.SPATIAL_INDEX, Action.UPDATE)
        row = await repo.get(uow.session, entity_id, fresh=True)
        before = placed_of(row)
        at = _stamp(uow, changes.at)
        given = changes.model_dump(exclude_unset=True, exclude={"at"})
        for name, value in given.items():
            if value is None:
                raise RuleViolation(f"{name} cannot be null", field=name)
        if "x" in given or "y" in given:
            check_finite(**{k: v for k, v in given.items() if k in ("x", "y")})
        if at <= row.position_updated_at:
            return MoveResult(applied=False, reason=_STORED_NEWER, entity=EntityRead.of(before))
        wanted = Placed(
            before.key,
            given.get("kind", before.kind),
            given.get("x", before.x),
            given.get("y", before.y),
            given.get("width", before.width),
            given.get("height", before.height),
            given.get("is_solid", before.is_solid),
            at,
        )
        check_placed(world.bounds, wanted)
        requested = (wanted.x, wanted.y)
        collided: list[str] = []
        if wanted.is_solid:
            outcome = resolve(
                world.index,
                key=wanted.key,
                x=wanted.x,
                y=wanted.y,
                width=wanted.width,
                height=wanted.height,
            )
            wanted = wanted.moved(*outcome.resolved, at)
            collided = outcome.collided_with
        values: dict[str, Any] = {
            "kind": wanted.kind,
            "x": wanted.x,
            "y": wanted.y,
            "width": wanted.width,
            "height": wanted.height,
            "is_solid": wanted.is_solid,
            "name": given.get("name", row.name),
            "updated_at": uow.clock.now(),
        }
        if not await repo.update_if_newer(uow.session, entity_id, at=at, values=values):
            current = placed_of(await repo.get(uow.session, entity_id, fresh=True))
            return MoveResult(applied=False, reason=_STORED_NEWER, entity=EntityRead.of(current))
        changed = {
            k: {"old": getattr(row, k), "new": v}
            for k, v in values.items()
            if k != "updated_at" and getattr(row, k) != v
        }
        audit.record(
            uow, actor=actor, action="update", entity=ENTITY, entity_id=entity_id, changes=changed
        )
        event = DomainEvent(MOVED, ENTITY, entity_id, uow.clock.now(), {"entity": wanted.to_json()})
        _after_change(uow, world, before, event)
        return MoveResult(
            applied=True,
            reason="pushed out of solid entities" if collided else None,
            entity=EntityRead.of(wanted, name=values["name"]),
            requested=requested,
            resolved=(wanted.x, wanted.y),
            collided_with=collided,
        )


async def delete_entity(uow: UnitOfWork, world: World, *, actor: Actor, entity_id: int) -> None:
    """Delete a world entity at once (spec 2.4); it leaves the index after the commit."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.SPATIAL_INDEX, Action.DELETE)
        row = await repo.get(uow.session, entity_id, fresh=True)
        before = placed_of(row)
        record = {**before.to_json(), "name": row.name}
        await repo.delete_row(uow.session, entity_id)
        audit.record(
            uow,
            actor=actor,
            action="delete",
            entity=ENTITY,
            entity_id=entity_id,
            changes={"record": record, "soft": False},
        )
        now = uow.clock.now()
        payload = {"key": before.key, "at": max(now, before.at).isoformat()}
        _after_change(uow, world, before, DomainEvent(REMOVED, ENTITY, entity_id, now, payload))


async def load_columns(uow: UnitOfWork, *, actor: Actor) -> tuple[Columns, RebuildReport]:
    """Read every world entity and live character position the index should hold, as columns."""
    rows: list[Sequence[Any]] = []
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.SPATIAL_INDEX, Action.READ)
        authorize(actor, MANAGEMENT, Resource.CHARACTER_POSITION, Action.READ)
        async for part in repo.entity_rows(uow.session):
            rows.extend(part)
        chars = await repo.character_positions(uow.session)
    report = RebuildReport(entities=len(rows), characters=0)
    # One list per column (a transpose in C), not one tuple per row.
    columns: list[list[Any]] = [list(c) for c in zip(*rows, strict=True)] or [[] for _ in range(8)]
    ids, kinds, xs, ys, ws, hs, solid, ats = columns
    keys = [entity_key(i) for i in ids]
    for cid, x, y, at in chars:
        if x is not None and y is not None and at is not None:
            c = character_placed(cid, x, y, at)
            for column, value in zip(
                (keys, kinds, xs, ys, ws, hs, solid, ats),
                (c.key, c.kind, c.x, c.y, c.width, c.height, c.is_solid, c.at),
                strict=True,
            ):
                column.append(value)
            report.characters += 1
    return Columns.of_lists(keys, kinds, xs, ys, ws, hs, solid, ats), report


async def rebuild(uow: UnitOfWork, world: World, *, actor: Actor) -> RebuildReport:
    """Regenerate the index from world_entities and live character positions, in bulk.

    Entries the index cannot hold (a character outside the world bounds) are left out and listed.
    """
    columns, report = await load_columns(uow, actor=actor)
    refused = columns.refused(world.bounds)
    for i in np.flatnonzero(refused).tolist():
        entry = columns.row(i)
        try:
            check_placed(world.bounds, entry)
        except RuleViolation as exc:
            report.skipped[entry.key] = exc.message
        if entry.kind == "character":
            report.characters -= 1
        else:
            report.entities -= 1
    world.load_columns(columns.take(~refused))
    return report


async def sync_character(
    uow: UnitOfWork, world: World, *, actor: Actor, character_id: int
) -> EntityRead | None:
    """Put a live character at its stored position in the index; NotFound if not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.CHARACTER_POSITION, Action.READ)
        cid, x, y, at = await repo.live_character(uow.session, character_id)
    if x is None or y is None or at is None:
        return None
    entry = character_placed(cid, x, y, at)
    world.index.forget_removal(entry.key)
    world.index.upsert(entry)
    current = world.index.get(entry.key)
    return None if current is None else EntityRead.of(current)
