"""One process's spatial world: the index, its tile-keyed query cache and its live subscribers.

Changes reach the world as domain events (local commits and other processes' stream entries
alike) and are applied with last-writer-wins, so the order they arrive in does not matter.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog

from visualdm.errors import RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.ownership import SPATIAL_CHARACTER_SIZE, SPATIAL_WS_QUEUE_MAX
from visualdm.settings import Settings
from visualdm.spatial.columns import Columns
from visualdm.spatial.index import (
    Bounds,
    Box,
    Outcome,
    Placed,
    SpatialIndex,
    character_key,
)
from visualdm.spatial.tiles import TileCache, change_tiles

log = structlog.get_logger(__name__)

PLACED = "world.entity_placed"
MOVED = "world.entity_moved"
REMOVED = "world.entity_removed"
CHARACTER_MOVED = "character.moved"
CHARACTER_DELETED = "character.deleted"
CHARACTER_RESTORED = "character.restored"
PREFIXES = ("world.entity_", CHARACTER_MOVED, CHARACTER_DELETED, CHARACTER_RESTORED)


def bounds_of(settings: Settings) -> Bounds:
    """The world bounds configured in `settings`."""
    return Bounds(
        settings.world_min_x, settings.world_min_y, settings.world_max_x, settings.world_max_y
    )


def character_placed(character_id: int, x: float, y: float, at: datetime) -> Placed:
    """A character as the index holds it: a small non-solid footprint centred on its position."""
    size = SPATIAL_CHARACTER_SIZE
    return Placed(character_key(character_id), "character", x, y, size, size, False, at)


def _position_key(event: DomainEvent) -> str | None:
    """The index key a position change (or removal) is about; None for other events."""
    if event.name in (PLACED, MOVED):
        return str(event.payload["entity"]["key"])
    if event.name == REMOVED:
        return str(event.payload["key"])
    if event.name in (CHARACTER_MOVED, CHARACTER_DELETED):
        return character_key(int(event.entity_id))
    return None


def _stamp(event: DomainEvent) -> tuple[datetime, int, tuple[float, ...]]:
    """When a change was observed; a removal wins a tie, then the index's own tie-break."""
    p = event.payload
    if event.name in (PLACED, MOVED):
        e = p["entity"]
        return (datetime.fromisoformat(e["at"]), 0, (e["x"], e["y"], e["width"], e["height"]))
    if event.name == CHARACTER_MOVED:
        return (datetime.fromisoformat(p["at"]), 0, (float(p["x"]), float(p["y"])))
    if event.name == REMOVED:
        return (datetime.fromisoformat(p["at"]), 1, ())
    return (event.occurred_at, 1, ())


def _intersects(a: Box, b: Box) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


@dataclass(eq=False)
class Subscription:
    """A live client's area of interest and its bounded outbox."""

    area: Box | None
    queue: asyncio.Queue[dict[str, Any]] = field(
        default_factory=lambda: asyncio.Queue(SPATIAL_WS_QUEUE_MAX)
    )
    overflowed: asyncio.Event = field(default_factory=asyncio.Event)

    def offer(self, message: dict[str, Any]) -> None:
        """Queue `message`; when the outbox is full, flag the subscriber as too slow instead."""
        if self.overflowed.is_set():
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.overflowed.set()


def live_message(sub: Box, before: Placed | None, after: Placed | None) -> dict[str, Any] | None:
    """The message a subscriber of area `sub` gets for a change, or None if it is not concerned.

    `enter` and `leave` say the entity crossed the area's edge (or appeared/vanished inside it);
    `move` says it changed while staying inside.
    """
    was = before is not None and _intersects(sub, before.box)
    now = after is not None and _intersects(sub, after.box)
    if now and after is not None:
        return {"type": "move" if was else "enter", "entity": after.to_json()}
    if was and before is not None:
        return {
            "type": "leave",
            "key": before.key,
            "reason": "removed" if after is None else "moved_out",
            "entity": None if after is None else after.to_json(),
        }
    return None


class World:
    """The index of this process plus what depends on it (query cache, live subscribers)."""

    def __init__(self, bounds: Bounds) -> None:
        self.index = SpatialIndex(bounds)
        self.tiles = TileCache()
        self.subscriptions: set[Subscription] = set()
        self.last_stream_id: str | None = None
        self.changes = 0
        self.index.on_change(self._changed)

    @property
    def bounds(self) -> Bounds:
        """The world bounds every footprint must lie in."""
        return self.index.bounds

    def _changed(self, before: Placed | None, after: Placed | None) -> None:
        self.changes += 1
        self.tiles.invalidate(change_tiles(before, after))
        for sub in self.subscriptions:
            if sub.area is None:
                continue
            message = live_message(sub.area, before, after)
            if message is not None:
                sub.offer(message)

    def subscribe(self, area: Box | None = None) -> Subscription:
        """Start a live subscription to changes inside `area` (none until it is set)."""
        sub = Subscription(area)
        self.subscriptions.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """End a live subscription."""
        self.subscriptions.discard(sub)

    def load(self, entities: list[Placed]) -> None:
        """Replace the index content (rebuild, restore) and drop every cached query."""
        self.index.load(entities)
        self.tiles.clear()
        self.changes += 1

    def load_columns(self, columns: Columns) -> None:
        """`load` from columns (a snapshot, a bulk rebuild); RuleViolation if a row is refused."""
        self.index.load_columns(columns)
        self.tiles.clear()
        self.changes += 1

    def apply(self, event: DomainEvent) -> Outcome | None:
        """Apply a spatial or character event with last-writer-wins; None if it is not one."""
        p = event.payload
        if event.name in (PLACED, MOVED):
            return self.index.upsert(Placed.from_json(p["entity"]))
        if event.name == REMOVED:
            return self.index.remove(str(p["key"]), datetime.fromisoformat(p["at"]))
        if event.name == CHARACTER_MOVED:
            cid = int(event.entity_id)
            at = datetime.fromisoformat(p["at"])
            return self.index.upsert(character_placed(cid, float(p["x"]), float(p["y"]), at))
        if event.name == CHARACTER_DELETED:
            return self.index.remove(character_key(int(event.entity_id)), event.occurred_at)
        if event.name == CHARACTER_RESTORED:
            self.index.forget_removal(character_key(int(event.entity_id)))
        return None

    def apply_many(self, events: list[DomainEvent]) -> int:
        """Apply a batch, touching the index once per entity: only its newest change matters.

        Last-writer-wins makes this equal to applying every event in turn. Returns how many
        events were offered to the index.
        """
        newest: dict[str, DomainEvent] = {}
        rest: list[DomainEvent] = []
        for event in events:
            key = _position_key(event)
            if key is None:
                rest.append(event)
                continue
            held = newest.get(key)
            if held is None or _stamp(event) >= _stamp(held):
                newest[key] = event
        for event in [*newest.values(), *rest]:
            self.apply_quietly(event)
        return len(newest) + len(rest)

    def apply_quietly(self, event: DomainEvent) -> Outcome | None:
        """`apply`, logging (not raising) an event whose position is invalid here."""
        try:
            return self.apply(event)
        except (RuleViolation, KeyError, TypeError, ValueError) as exc:
            log.warning("spatial event not applied", event=event.name, error=str(exc))
            return None
