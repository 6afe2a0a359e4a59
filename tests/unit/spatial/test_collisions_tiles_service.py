"""Collision push-out by the minimum translation vector, and tile-exact query invalidation."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from visualdm.access.principals import SystemActor
from visualdm.ownership import SPATIAL_TILE_SIZE
from visualdm.spatial import queries
from visualdm.spatial.collisions import Blocked, penetration, resolve
from visualdm.spatial.index import Bounds, Placed, box_at
from visualdm.spatial.tiles import change_tiles, tiles_of
from visualdm.spatial.world import World

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ME = SystemActor("tests")
S = SPATIAL_TILE_SIZE


def _world(*entities: Placed, bounds: Bounds | None = None) -> World:
    world = World(bounds or Bounds(-1000, -1000, 1000, 1000))
    for e in entities:
        world.index.upsert(e)
    return world


def wall(key: str, x: float, y: float, w: float, h: float, *, solid: bool = True) -> Placed:
    return Placed(key, "wall", x, y, w, h, solid, T0)


def test_an_overlap_is_pushed_out_along_the_shallowest_axis() -> None:
    world = _world(wall("entity:1", 0, 0, 10, 10))
    got = resolve(world.index, key="entity:9", x=5.5, y=1, width=2, height=2)
    assert got.resolved == pytest.approx((6.0, 1.0))
    assert got.collided_with == ["entity:1"]
    assert got.requested == (5.5, 1)
    assert got.pushed


def test_touching_is_not_a_collision_and_non_solid_entities_do_not_push() -> None:
    world = _world(wall("entity:1", 0, 0, 10, 10), wall("entity:2", 20, 0, 10, 10, solid=False))
    assert not resolve(world.index, key="entity:9", x=6, y=0, width=2, height=2).pushed
    assert not resolve(world.index, key="entity:9", x=20, y=0, width=2, height=2).pushed


def test_multiple_overlaps_are_resolved_over_several_rounds() -> None:
    # A corridor: pushed up out of the floor, then no longer overlapping the side wall.
    world = _world(wall("entity:1", 0, 0, 20, 2), wall("entity:2", -6, 5, 2, 8))
    got = resolve(world.index, key="entity:9", x=-4.5, y=1.5, width=2, height=2)
    box = box_at(*got.resolved, 2, 2)
    for other in world.index.snapshot():
        px, py = penetration(box, other.box)
        assert px <= 1e-6 or py <= 1e-6
    assert set(got.collided_with) == {"entity:1", "entity:2"}


def test_a_move_with_no_free_position_nearby_is_blocked() -> None:
    world = _world(wall("entity:1", 0, 0, 10, 10), bounds=Bounds(-6, -6, 6, 6))
    with pytest.raises(Blocked) as caught:
        resolve(world.index, key="entity:9", x=0, y=0, width=2, height=2)
    assert caught.value.details["collided_with"] == ["entity:1"]


def test_an_update_drops_exactly_the_tiles_of_its_old_and_new_footprint() -> None:
    world = _world(wall("entity:1", S * 0.5, S * 0.5, 4, 4))
    near = (0.0, 0.0, S - 1, S - 1)  # tile (0, 0) only
    dest = (S * 2 + 1, 1.0, S * 3 - 1, S - 1)  # tile (2, 0) only
    far = (S * 5 + 1, S * 5 + 1, S * 6 - 1, S * 6 - 1)  # tile (5, 5): unrelated
    for box in (near, dest, far):
        queries.search_window(world, actor=ME, box=box)
    assert len(world.tiles) == 3
    world.index.upsert(
        wall("entity:1", S * 2.5, S * 0.5, 4, 4).moved(S * 2.5, S * 0.5, T0.replace(year=2027))
    )
    assert "window:" + ":".join(repr(v) for v in far) in world.tiles
    assert len(world.tiles) == 1
    hits_before = world.tiles.hits
    got = queries.search_window(world, actor=ME, box=far)
    assert world.tiles.hits == hits_before + 1
    assert got.count == 0
    assert [e.key for e in queries.search_window(world, actor=ME, box=dest).items] == ["entity:1"]
    assert queries.search_window(world, actor=ME, box=near).count == 0


def test_change_tiles_cover_both_footprints_including_edges() -> None:
    before = wall("entity:1", 0, 0, 2, 2)
    after = before.moved(S, S, T0)
    assert set(change_tiles(before, after)) == set(tiles_of(before.box)) | set(tiles_of(after.box))
    assert set(tiles_of(before.box)) == {(-1, -1), (0, -1), (-1, 0), (0, 0)}


def test_large_query_areas_are_answered_but_not_cached() -> None:
    world = _world(wall("entity:1", 0, 0, 4, 4))
    got = queries.search_window(world, actor=ME, box=(-S * 10, -S * 10, S * 10, S * 10))
    assert got.count == 1
    assert len(world.tiles) == 0
