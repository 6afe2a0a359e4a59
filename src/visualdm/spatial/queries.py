"""Spatial queries over this process's index: window, radius, nearest, path, counts.

Every user may read the world (spec 6.1); the Spatial Management System answers. Window and
radius results are cached per tile area (tiles.py) and dropped when a change touches the area.
"""

from __future__ import annotations

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor
from visualdm.errors import RuleViolation
from visualdm.ownership import (
    SPATIAL_NEAREST_MAX_K,
    SPATIAL_QUERY_MAX_RESULTS,
    Action,
    Module,
    Resource,
)
from visualdm.spatial.index import Box, Placed, check_finite, point_box_distance
from visualdm.spatial.schemas import EntityList, EntityRead, PathHit, PathResult
from visualdm.spatial.world import World

MODULE = Module.SPATIAL_MANAGEMENT


def check_may_read(actor: Actor) -> None:
    """Raise PermissionDenied unless `actor` may read the spatial index."""
    authorize(actor, MODULE, Resource.SPATIAL_INDEX, Action.READ)


def _kinds(kinds: list[str] | None) -> frozenset[str] | None:
    return frozenset(kinds) if kinds else None


def _page(found: list[Placed], kinds: frozenset[str] | None, limit: int | None) -> EntityList:
    cap = SPATIAL_QUERY_MAX_RESULTS if limit is None else min(limit, SPATIAL_QUERY_MAX_RESULTS)
    if limit is not None and limit < 1:
        raise RuleViolation("limit must be at least 1", limit=limit)
    chosen = sorted((e for e in found if kinds is None or e.kind in kinds), key=lambda e: e.key)
    return EntityList(
        items=[EntityRead.of(e) for e in chosen[:cap]],
        count=len(chosen),
        truncated=len(chosen) > cap,
    )


def check_box(box: Box) -> Box:
    """Return `box` if it is finite and ordered; raises RuleViolation."""
    check_finite(min_x=box[0], min_y=box[1], max_x=box[2], max_y=box[3])
    if box[0] > box[2] or box[1] > box[3]:
        raise RuleViolation(f"box {box} is inverted: min must not exceed max", box=list(box))
    return box


def search_window(
    world: World,
    *,
    actor: Actor,
    box: Box,
    kinds: list[str] | None = None,
    limit: int | None = None,
) -> EntityList:
    """Entities whose footprint intersects `box`; RuleViolation for a bad box."""
    check_may_read(actor)
    box = check_box(box)
    key = "window:" + ":".join(repr(v) for v in box)
    found: list[Placed] = world.tiles.get_or_load(key, box, lambda: world.index.window(box))
    return _page(found, _kinds(kinds), limit)


def search_radius(
    world: World,
    *,
    actor: Actor,
    x: float,
    y: float,
    r: float,
    kinds: list[str] | None = None,
    limit: int | None = None,
) -> EntityList:
    """Entities within distance `r` of (x, y), by true distance to their footprint."""
    check_may_read(actor)
    check_finite(x=x, y=y, r=r)
    if r < 0:
        raise RuleViolation("the radius cannot be negative", r=r)
    area = (x - r, y - r, x + r, y + r)
    key = f"radius:{x!r}:{y!r}:{r!r}"
    found: list[Placed] = world.tiles.get_or_load(key, area, lambda: world.index.within(x, y, r))
    return _page(found, _kinds(kinds), limit)


def count_window(world: World, *, actor: Actor, box: Box, kinds: list[str] | None = None) -> int:
    """How many entities (of `kinds`) intersect `box`."""
    return search_window(world, actor=actor, box=box, kinds=kinds, limit=1).count


def nearest_found(
    world: World,
    *,
    actor: Actor,
    x: float,
    y: float,
    k: int,
    kinds: list[str] | None = None,
    max_distance: float | None = None,
) -> list[tuple[Placed, float]]:
    """Up to `k` entities nearest to (x, y), nearest first, with their distances.

    Raises PermissionDenied, or RuleViolation for a bad point, k or max_distance.
    """
    check_may_read(actor)
    check_finite(x=x, y=y)
    if not 1 <= k <= SPATIAL_NEAREST_MAX_K:
        raise RuleViolation(f"k must be between 1 and {SPATIAL_NEAREST_MAX_K}", k=k)
    if max_distance is not None:
        check_finite(max_distance=max_distance)
        if max_distance < 0:
            raise RuleViolation("max_distance cannot be negative", max_distance=max_distance)
    found = world.index.nearest(x, y, k, kinds=_kinds(kinds), max_distance=max_distance)
    return [(e, point_box_distance(x, y, e.box)) for e in found]


def nearest(
    world: World,
    *,
    actor: Actor,
    x: float,
    y: float,
    k: int,
    kinds: list[str] | None = None,
    max_distance: float | None = None,
) -> EntityList:
    """`nearest_found` as the EntityList view."""
    found = nearest_found(world, actor=actor, x=x, y=y, k=k, kinds=kinds, max_distance=max_distance)
    items = [EntityRead.of(e, distance=d) for e, d in found]
    return EntityList(items=items, count=len(items))


def trace_path(
    world: World,
    *,
    actor: Actor,
    start: tuple[float, float],
    end: tuple[float, float],
    ignore: list[str] | None = None,
) -> PathResult:
    """The entities the segment start-end crosses, in order, and whether a solid one blocks it."""
    check_may_read(actor)
    check_finite(x0=start[0], y0=start[1], x1=end[0], y1=end[1])
    skip = set(ignore or ())
    hits = [
        PathHit(t=t, entity=EntityRead.of(e))
        for t, e in world.index.crossing(*start, *end)
        if e.key not in skip
    ][:SPATIAL_QUERY_MAX_RESULTS]
    blocker = next((h.entity.key for h in hits if h.entity.is_solid), None)
    return PathResult(hits=hits, line_of_sight=blocker is None, blocked_by=blocker)
