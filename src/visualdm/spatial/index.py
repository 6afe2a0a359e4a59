"""The per-process spatial index: entities with footprints in an R-tree, last-writer-wins.

An entity is keyed `entity:<id>` (a world_entities row) or `character:<id>`; (x, y) is the centre
of its footprint. Every change carries the timestamp it was observed at: an older one is ignored
and reported, so processes applying the same changes in any order converge (spec 5.1).
"""

from __future__ import annotations

import gc
import math
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from visualdm.errors import RuleViolation
from visualdm.ownership import SPATIAL_TOMBSTONES_MAX
from visualdm.spatial.rtree import Item, RTree

if TYPE_CHECKING:
    from visualdm.spatial.columns import Columns

Box = tuple[float, float, float, float]


class Outcome(StrEnum):
    """What became of a change offered to the index."""

    APPLIED = "applied"
    STALE = "stale"  # an equal or newer change (or removal) is already applied
    MISSING = "missing"  # a removal of an entity the index does not hold


@dataclass(frozen=True, slots=True)
class Bounds:
    """The rectangle of the world every footprint must lie in."""

    min_x: float
    min_y: float
    max_x: float
    max_y: float


class Placed(NamedTuple):
    """An entity in the index: what it is, where its footprint's centre is, and since when.

    An immutable named tuple rather than a frozen dataclass: a start-up builds a million of
    them, and a tuple is made in a fraction of a frozen dataclass's time (ADR 0009).
    """

    key: str
    kind: str
    x: float
    y: float
    width: float
    height: float
    is_solid: bool
    at: datetime

    @property
    def box(self) -> Box:
        """The footprint as (min_x, min_y, max_x, max_y)."""
        return box_at(self.x, self.y, self.width, self.height)

    def moved(self, x: float, y: float, at: datetime) -> Placed:
        """The same entity at (x, y) as of `at`."""
        return self._replace(x=x, y=y, at=at)

    def order(self) -> tuple[Any, ...]:
        """The last-writer-wins order: newest first, then a deterministic tie-break."""
        return (self.at, self.x, self.y, self.width, self.height, self.kind, self.is_solid)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (timestamps in ISO 8601)."""
        return {
            "key": self.key,
            "kind": self.kind,
            "x": self.x,
            "y": self.y,
            "width": self.width,
            "height": self.height,
            "is_solid": self.is_solid,
            "at": self.at.isoformat(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Placed:
        """Inverse of `to_json`."""
        return cls(
            key=str(data["key"]),
            kind=str(data["kind"]),
            x=float(data["x"]),
            y=float(data["y"]),
            width=float(data["width"]),
            height=float(data["height"]),
            is_solid=bool(data["is_solid"]),
            at=datetime.fromisoformat(data["at"]),
        )


def entity_key(entity_id: int) -> str:
    """Index key of a world_entities row."""
    return f"entity:{entity_id}"


def character_key(character_id: int) -> str:
    """Index key of a character."""
    return f"character:{character_id}"


def box_at(x: float, y: float, width: float, height: float) -> Box:
    """The box of a footprint centred on (x, y)."""
    hw, hh = width / 2, height / 2
    return (x - hw, y - hh, x + hw, y + hh)


def check_finite(**values: float) -> None:
    """Raise RuleViolation unless every value is a finite number."""
    for name, value in values.items():
        if (
            not isinstance(value, (int, float))
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            raise RuleViolation(f"{name} must be a finite number, got {value!r}", field=name)


def check_size(width: float, height: float) -> None:
    """Raise RuleViolation unless the footprint's sides are finite and positive."""
    check_finite(width=width, height=height)
    if width <= 0 or height <= 0:
        raise RuleViolation(
            f"footprint sides must be positive, got {width} x {height}", width=width, height=height
        )


def check_inside(bounds: Bounds, box: Box) -> None:
    """Raise RuleViolation unless `box` lies inside the world bounds."""
    x0, y0, x1, y1 = box
    if x0 < bounds.min_x or y0 < bounds.min_y or x1 > bounds.max_x or y1 > bounds.max_y:
        raise RuleViolation(
            f"footprint {box} lies outside the world ({bounds.min_x}, {bounds.min_y}, "
            f"{bounds.max_x}, {bounds.max_y})",
            box=list(box),
        )


def check_placed(bounds: Bounds, entity: Placed) -> None:
    """Validate an entity's coordinates, size and bounds; raises RuleViolation."""
    check_finite(x=entity.x, y=entity.y)
    check_size(entity.width, entity.height)
    if not entity.kind:
        raise RuleViolation("an entity needs a kind")
    if entity.at.tzinfo is None:
        raise RuleViolation("position timestamps must carry a time zone")
    check_inside(bounds, entity.box)


def point_box_distance(x: float, y: float, box: Box) -> float:
    """Euclidean distance from (x, y) to the nearest point of `box` (0 inside)."""
    dx = max(box[0] - x, 0.0, x - box[2])
    dy = max(box[1] - y, 0.0, y - box[3])
    return math.hypot(dx, dy)


def segment_entry(x0: float, y0: float, x1: float, y1: float, box: Box) -> float | None:
    """Where along the segment (0..1) it first touches `box` (Liang-Barsky), None if never."""
    t0, t1 = 0.0, 1.0
    for p, q in (
        (-(x1 - x0), x0 - box[0]),
        (x1 - x0, box[2] - x0),
        (-(y1 - y0), y0 - box[1]),
        (y1 - y0, box[3] - y0),
    ):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    return t0


@contextmanager
def _collector_paused() -> Iterator[None]:
    """No garbage collection while a bulk load allocates millions of objects.

    Each collection of the old generation walks every tracked object, and a million entities
    trigger many of them while they are being built; none of them is garbage. What the load
    made is then frozen (`gc.freeze`): it lives as long as the index, so the first collection
    after the load would only walk it for nothing. Reference counting still frees it.
    """
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if was:
            gc.enable()


class SpatialIndex:
    """Entities in an R-tree, changed only through last-writer-wins `upsert` and `remove`."""

    def __init__(self, bounds: Bounds, *, tree: RTree | None = None) -> None:
        self.bounds = bounds
        self._tree = tree if tree is not None else RTree()
        self._entities: dict[str, Placed] = {}
        self._items: dict[str, Item] = {}
        self._tombstones: OrderedDict[str, datetime] = OrderedDict()
        self._listeners: list[Callable[[Placed | None, Placed | None], None]] = []

    def __len__(self) -> int:
        return len(self._entities)

    def __iter__(self) -> Iterator[Placed]:
        return iter(list(self._entities.values()))

    def get(self, key: str) -> Placed | None:
        """The entity under `key`, or None."""
        return self._entities.get(key)

    def on_change(self, listener: Callable[[Placed | None, Placed | None], None]) -> None:
        """Call `listener(before, after)` after each applied change (None: absent)."""
        self._listeners.append(listener)

    def upsert(self, entity: Placed) -> Outcome:
        """Place or move `entity` unless an equal or newer change is in; RuleViolation if bad."""
        check_placed(self.bounds, entity)
        gone = self._tombstones.get(entity.key)
        if gone is not None and entity.at <= gone:
            return Outcome.STALE
        before = self._entities.get(entity.key)
        if before is not None and entity.order() <= before.order():
            return Outcome.STALE
        self._swap(entity.key, before, entity)
        self._tombstones.pop(entity.key, None)
        return Outcome.APPLIED

    def remove(self, key: str, at: datetime) -> Outcome:
        """Remove `key` now, remembering `at` so older updates stay ignored."""
        gone = self._tombstones.get(key)
        before = self._entities.get(key)
        if before is not None and at < before.at:
            return Outcome.STALE
        if before is not None:
            self._swap(key, before, None)
        self._tombstones[key] = max(at, gone) if gone is not None else at
        self._tombstones.move_to_end(key)
        while len(self._tombstones) > SPATIAL_TOMBSTONES_MAX:
            self._tombstones.popitem(last=False)
        return Outcome.APPLIED if before is not None else Outcome.MISSING

    def forget_removal(self, key: str) -> None:
        """Drop the removal mark of `key` (a restored entity may come back with an older time)."""
        self._tombstones.pop(key, None)

    def load(self, entities: Iterable[Placed]) -> None:
        """Replace the whole content with `entities` (bulk-loaded); all-or-nothing."""
        with _collector_paused():
            fresh = {e.key: e for e in entities}
            for e in fresh.values():
                check_placed(self.bounds, e)
            items = {k: (*e.box, k) for k, e in fresh.items()}
            self._install(fresh, items)

    def load_columns(self, columns: Columns) -> None:
        """`load` of entities given as columns, checked as arrays; all-or-nothing.

        Raises RuleViolation (as `check_placed`) if any row cannot be held.
        """
        columns.check(self.bounds)
        with _collector_paused():
            placed = columns.placed()
            fresh = dict(zip(columns.keys, placed, strict=True))
            if len(fresh) != len(placed):  # a key twice: the last one wins, as in `load`
                self._install(fresh, {k: (*e.box, k) for k, e in fresh.items()})
                return
            boxes = columns.boxes()
            corners = (boxes[:, i].tolist() for i in range(4))
            self._install(
                fresh,
                dict(zip(columns.keys, zip(*corners, columns.keys, strict=True), strict=True)),
            )

    def _install(self, entities: dict[str, Placed], items: dict[str, Item]) -> None:
        tree = RTree(self._tree.max_entries)
        tree.load(list(items.values()))
        self._tree, self._entities, self._items = tree, entities, items
        self._tombstones.clear()

    def _swap(self, key: str, before: Placed | None, after: Placed | None) -> None:
        """Replace the entry of `key` as one step: on failure the index is as it was."""
        old_item = self._items.get(key)
        new_item = None if after is None else (*after.box, key)
        if old_item is not None:
            self._tree.remove(old_item)
        try:
            if new_item is not None:
                self._tree.insert(new_item)
        except BaseException:
            if old_item is not None:
                self._tree.insert(old_item)
            raise
        if after is None:
            del self._entities[key], self._items[key]
        else:
            self._entities[key] = after
            self._items[key] = new_item  # type: ignore[assignment]
        for listener in self._listeners:
            listener(before, after)

    # --- queries ----------------------------------------------------------------------------

    def window(self, box: Box) -> list[Placed]:
        """Entities whose footprint intersects `box` (touching counts)."""
        return [self._entities[it[4]] for it in self._tree.search(box)]

    def within(self, x: float, y: float, radius: float) -> list[Placed]:
        """Entities whose footprint is within `radius` of (x, y), by true distance to the box."""
        found = self._tree.search((x - radius, y - radius, x + radius, y + radius))
        return [self._entities[it[4]] for it in found if point_box_distance(x, y, it[:4]) <= radius]

    def nearest(
        self,
        x: float,
        y: float,
        k: int,
        *,
        kinds: frozenset[str] | None = None,
        max_distance: float | None = None,
    ) -> list[Placed]:
        """Up to `k` entities nearest to (x, y), nearest first, optionally of some kinds."""
        ents = self._entities

        def accept(item: Item) -> bool:
            return ents[item[4]].kind in kinds  # type: ignore[operator]  # kinds is set here

        chosen = None if kinds is None else accept  # no Python call per candidate if unneeded
        found = self._tree.knn(x, y, k, max_distance=max_distance, predicate=chosen)
        return [ents[it[4]] for it in found]

    def crossing(self, x0: float, y0: float, x1: float, y1: float) -> list[tuple[float, Placed]]:
        """Entities the segment crosses, with where (0..1) it enters each, in order along it."""
        box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        hits: list[tuple[float, Placed]] = []
        for item in self._tree.search(box):
            t = segment_entry(x0, y0, x1, y1, item[:4])
            if t is not None:
                hits.append((t, self._entities[item[4]]))
        hits.sort(key=lambda h: (h[0], h[1].key))
        return hits

    def snapshot(self) -> list[Placed]:
        """Every entity, ordered by key."""
        return [self._entities[k] for k in sorted(self._entities)]
