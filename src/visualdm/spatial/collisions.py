"""Collision resolution (spec 5.2): push a moving footprint out of solid entities by the MTV.

Each round finds the solid entities the footprint overlaps (touching is not overlapping), takes
the deepest overlap and moves the footprint by that overlap's minimum translation vector: the
shortest push along one axis that separates the two boxes. A few rounds settle multiple overlaps;
if they do not, or the push leaves the world, the move is refused as blocked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from visualdm.errors import RuleViolation
from visualdm.ownership import SPATIAL_COLLISION_ITERATIONS
from visualdm.spatial.index import Box, SpatialIndex, box_at

_EPS = 1e-6  # world units; floating error after a push must not count as overlap


class Blocked(RuleViolation):
    """No free position near the requested one: solid entities surround it."""

    code = "spatial_blocked"


@dataclass(frozen=True, slots=True)
class Resolution:
    """Where a move ended: the requested and resolved centres, and what pushed it."""

    requested: tuple[float, float]
    resolved: tuple[float, float]
    collided_with: list[str] = field(default_factory=list)

    @property
    def pushed(self) -> bool:
        """Whether the move was pushed away from where it was asked to go."""
        return self.requested != self.resolved


def penetration(a: Box, b: Box) -> tuple[float, float]:
    """Overlap depth of two boxes along x and y (<= 0 on an axis where they do not overlap)."""
    return (min(a[2], b[2]) - max(a[0], b[0]), min(a[3], b[3]) - max(a[1], b[1]))


def mtv(a: Box, b: Box) -> tuple[float, float]:
    """The shortest axis-aligned translation of `a` that ends its overlap with `b`."""
    px, py = penetration(a, b)
    if px <= py:
        left = (a[0] + a[2]) < (b[0] + b[2])
        return (-px if left else px, 0.0)
    below = (a[1] + a[3]) < (b[1] + b[3])
    return (0.0, -py if below else py)


def solid_overlaps(index: SpatialIndex, box: Box, *, ignore: str) -> list[tuple[float, str, Box]]:
    """Solid entities whose footprint overlaps `box` by more than touching, deepest first."""
    hits = []
    for other in index.window(box):
        if other.key == ignore or not other.is_solid:
            continue
        ob = other.box
        px, py = penetration(box, ob)
        if px > _EPS and py > _EPS:
            hits.append((px * py, other.key, ob))
    hits.sort(key=lambda h: (-h[0], h[1]))
    return hits


def resolve(
    index: SpatialIndex, *, key: str, x: float, y: float, width: float, height: float
) -> Resolution:
    """Push the footprint at (x, y) out of solid entities; raises Blocked if it cannot be freed."""
    cx, cy = x, y
    collided: list[str] = []
    for _ in range(SPATIAL_COLLISION_ITERATIONS + 1):
        box = box_at(cx, cy, width, height)
        hits = solid_overlaps(index, box, ignore=key)
        if not hits:
            return Resolution((x, y), (cx, cy), collided)
        _, other, other_box = hits[0]
        if other not in collided:
            collided.append(other)
        dx, dy = mtv(box, other_box)
        cx, cy = cx + dx, cy + dy
        b = index.bounds
        hw, hh = width / 2, height / 2
        if cx - hw < b.min_x or cy - hh < b.min_y or cx + hw > b.max_x or cy + hh > b.max_y:
            break
    raise Blocked(
        f"no free position near ({x}, {y}): blocked by {', '.join(collided)}",
        requested=[x, y],
        collided_with=collided,
    )
