"""The spatial index: last-writer-wins, validation, atomic changes, queries against brute force."""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from visualdm.access.principals import SystemActor
from visualdm.errors import RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.spatial import queries
from visualdm.spatial.index import (
    Bounds,
    Outcome,
    Placed,
    SpatialIndex,
    point_box_distance,
    segment_entry,
)
from visualdm.spatial.rtree import Item, RTree
from visualdm.spatial.world import MOVED, REMOVED, World

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOUNDS = Bounds(-1000.0, -1000.0, 1000.0, 1000.0)
ME = SystemActor("tests")


def ent(
    key: str,
    x: float,
    y: float,
    *,
    w: float = 2.0,
    h: float = 2.0,
    s: int = 0,
    kind: str = "house",
    solid: bool = True,
) -> Placed:
    return Placed(key, kind, x, y, w, h, solid, T0 + timedelta(seconds=s))


def test_an_older_update_is_ignored_and_reported_as_stale() -> None:
    index = SpatialIndex(BOUNDS)
    assert index.upsert(ent("entity:1", 0, 0, s=10)) is Outcome.APPLIED
    assert index.upsert(ent("entity:1", 50, 50, s=5)) is Outcome.STALE
    assert index.get("entity:1") == ent("entity:1", 0, 0, s=10)
    assert index.upsert(ent("entity:1", 60, 60, s=11)) is Outcome.APPLIED
    assert [e.key for e in index.window((59, 59, 61, 61))] == ["entity:1"]
    assert index.window((-1, -1, 1, 1)) == []


def test_any_arrival_order_converges_to_the_newest_change() -> None:
    changes = [ent("entity:1", float(i), float(-i), s=i % 7) for i in range(30)]
    results = set()
    for seed in range(5):
        shuffled = changes[:]
        random.Random(seed).shuffle(shuffled)
        index = SpatialIndex(BOUNDS)
        for c in shuffled:
            index.upsert(c)
        results.add(index.get("entity:1"))
    assert len(results) == 1


def test_a_removal_beats_older_updates_that_arrive_late() -> None:
    index = SpatialIndex(BOUNDS)
    index.upsert(ent("entity:1", 0, 0, s=1))
    assert index.remove("entity:1", T0 + timedelta(seconds=5)) is Outcome.APPLIED
    assert index.get("entity:1") is None
    assert index.window((-5, -5, 5, 5)) == []
    assert index.upsert(ent("entity:1", 0, 0, s=3)) is Outcome.STALE
    assert index.upsert(ent("entity:1", 0, 0, s=6)) is Outcome.APPLIED


@pytest.mark.parametrize(
    "bad",
    [
        ent("entity:1", math.nan, 0),
        ent("entity:1", 0, math.inf),
        ent("entity:1", 0, 0, w=0),
        ent("entity:1", 0, 0, h=-1),
        ent("entity:1", 999.5, 0),
        ent("entity:1", 0, -2000),
        ent("entity:1", 0, 0, kind=""),
        Placed("entity:1", "house", 0, 0, 1, 1, True, datetime(2026, 1, 1)),
    ],
)
def test_invalid_entities_are_rule_violations_and_change_nothing(bad: Placed) -> None:
    index = SpatialIndex(BOUNDS)
    index.upsert(ent("entity:1", 5, 5))
    with pytest.raises(RuleViolation):
        index.upsert(bad)
    assert index.get("entity:1") == ent("entity:1", 5, 5)
    assert len(index.window((4, 4, 6, 6))) == 1


class _Exploding(Exception):
    pass


class _FailingOnce(RTree):
    """An R-tree whose next insert after `arm()` fails."""

    armed = False

    def arm(self) -> None:
        _FailingOnce.armed = True

    def insert(self, item: Item) -> None:
        if _FailingOnce.armed:
            _FailingOnce.armed = False
            raise _Exploding
        super().insert(item)


def test_a_failed_insert_restores_the_old_entry() -> None:
    tree = _FailingOnce()
    index = SpatialIndex(BOUNDS, tree=tree)
    index.upsert(ent("entity:1", 5, 5))
    seen: list[object] = []
    index.on_change(lambda b, a: seen.append((b, a)))
    tree.arm()
    with pytest.raises(_Exploding):
        index.upsert(ent("entity:1", 50, 50, s=1))
    assert index.get("entity:1") == ent("entity:1", 5, 5)
    assert [e.key for e in index.window((4, 4, 6, 6))] == ["entity:1"]
    assert index.window((49, 49, 51, 51)) == []
    assert seen == []


def _world(n: int = 150, seed: int = 7) -> World:
    rng = random.Random(seed)
    world = World(BOUNDS)
    kinds = ["house", "tree", "npc"]
    world.load(
        [
            Placed(
                f"entity:{i}",
                rng.choice(kinds),
                rng.uniform(-900, 900),
                rng.uniform(-900, 900),
                rng.uniform(0.5, 40),
                rng.uniform(0.5, 40),
                rng.random() < 0.5,
                T0,
            )
            for i in range(n)
        ]
    )
    return world


def _inter(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] <= b[2] and b[0] <= a[2] and a[1] <= b[3] and b[1] <= a[3]


def test_window_radius_and_counts_match_brute_force() -> None:
    world = _world()
    everything = world.index.snapshot()
    rng = random.Random(1)
    for _ in range(40):
        x0, y0 = rng.uniform(-1000, 900), rng.uniform(-1000, 900)
        box = (x0, y0, x0 + rng.uniform(0, 300), y0 + rng.uniform(0, 300))
        got = queries.search_window(world, actor=ME, box=box)
        want = sorted(e.key for e in everything if _inter(e.box, box))
        assert [i.key for i in got.items] == want
        assert queries.count_window(world, actor=ME, box=box, kinds=["tree"]) == len(
            [e for e in everything if _inter(e.box, box) and e.kind == "tree"]
        )
        x, y, r = rng.uniform(-900, 900), rng.uniform(-900, 900), rng.uniform(0, 200)
        got_r = queries.search_radius(world, actor=ME, x=x, y=y, r=r)
        want_r = sorted(e.key for e in everything if point_box_distance(x, y, e.box) <= r)
        assert [i.key for i in got_r.items] == want_r


def test_radius_uses_true_distance_not_the_bounding_square() -> None:
    world = World(BOUNDS)
    world.index.upsert(ent("entity:1", 9, 9, w=2, h=2))  # box corner (8, 8): distance 11.3
    assert queries.search_radius(world, actor=ME, x=0, y=0, r=10).count == 0
    assert queries.search_radius(world, actor=ME, x=0, y=0, r=11.4).count == 1


def test_nearest_matches_brute_force_with_kind_filter_and_max_distance() -> None:
    world = _world()
    everything = world.index.snapshot()
    rng = random.Random(2)
    for _ in range(30):
        x, y = rng.uniform(-900, 900), rng.uniform(-900, 900)
        k = rng.randint(1, 10)
        kind = rng.choice([None, "npc"])
        limit = rng.choice([None, 150.0])
        got = queries.nearest(
            world, actor=ME, x=x, y=y, k=k, kinds=[kind] if kind else None, max_distance=limit
        )
        pool = [
            (point_box_distance(x, y, e.box), e.key)
            for e in everything
            if (kind is None or e.kind == kind)
            and (limit is None or point_box_distance(x, y, e.box) <= limit)
        ]
        want = sorted(pool)[:k]
        assert [i.distance for i in got.items] == pytest.approx([d for d, _ in want])


def _segment_hits_box_brute(
    p: tuple[float, float], q: tuple[float, float], box: tuple[float, ...]
) -> bool:
    steps = 4000
    return any(
        box[0] <= p[0] + (q[0] - p[0]) * i / steps <= box[2]
        and box[1] <= p[1] + (q[1] - p[1]) * i / steps <= box[3]
        for i in range(steps + 1)
    )


def test_path_lists_the_entities_a_segment_crosses_in_order() -> None:
    world = _world(60, seed=3)
    everything = world.index.snapshot()
    rng = random.Random(4)
    for _ in range(15):
        p = (rng.uniform(-900, 900), rng.uniform(-900, 900))
        q = (rng.uniform(-900, 900), rng.uniform(-900, 900))
        got = queries.trace_path(world, actor=ME, start=p, end=q)
        keys = {h.entity.key for h in got.hits}
        for e in everything:
            if _segment_hits_box_brute(p, q, e.box):
                assert e.key in keys
        ts = [h.t for h in got.hits]
        assert ts == sorted(ts)
        solid = [h.entity.key for h in got.hits if h.entity.is_solid]
        assert got.line_of_sight is (not solid)


def test_segment_entry_handles_axis_parallel_and_missing_segments() -> None:
    box = (0.0, 0.0, 1.0, 1.0)
    assert segment_entry(-1, 0.5, 2, 0.5, box) == pytest.approx(1 / 3)
    assert segment_entry(-1, 2, 2, 2, box) is None
    assert segment_entry(0.5, 0.5, 0.6, 0.6, box) == 0.0


@pytest.mark.parametrize(
    "call",
    [
        lambda w: queries.search_window(w, actor=ME, box=(0, 0, math.nan, 1)),
        lambda w: queries.search_window(w, actor=ME, box=(5, 0, 1, 1)),
        lambda w: queries.search_radius(w, actor=ME, x=0, y=0, r=-1),
        lambda w: queries.search_radius(w, actor=ME, x=math.inf, y=0, r=1),
        lambda w: queries.nearest(w, actor=ME, x=0, y=0, k=0),
        lambda w: queries.nearest(w, actor=ME, x=0, y=0, k=1, max_distance=-2),
    ],
)
def test_bad_query_parameters_are_rule_violations(call: object) -> None:
    with pytest.raises(RuleViolation):
        call(World(BOUNDS))  # type: ignore[operator]


def test_a_coalesced_batch_ends_where_applying_each_event_does() -> None:
    rng = random.Random(9)
    events = []
    for _ in range(300):
        key = f"entity:{rng.randint(1, 8)}"
        at = T0 + timedelta(seconds=rng.randint(0, 40))
        if rng.random() < 0.1:
            events.append(DomainEvent(REMOVED, "e", key, T0, {"key": key, "at": at.isoformat()}))
        else:
            e = Placed(key, "npc", rng.uniform(-50, 50), 0.0, 1.0, 1.0, False, at)
            events.append(DomainEvent(MOVED, "e", key, T0, {"entity": e.to_json()}))
    one, many = World(BOUNDS), World(BOUNDS)
    for ev in events:
        one.apply(ev)
    many.apply_many(events)
    assert many.index.snapshot() == one.index.snapshot()
