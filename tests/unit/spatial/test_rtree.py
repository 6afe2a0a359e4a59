"""Property and stateful tests of the R-tree against a brute-force list oracle.

Example counts come from the active hypothesis profile (tests/conftest.py): the default for
development, thousands in CI. The C core's own invariant check (`_check_invariants`) runs
alongside the snapshot walk after every step, and the last tests cover what a C extension can
get wrong on its own: reference counts, exceptions from callbacks, re-entrant calls.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import pickle
import sys
import weakref
from collections import Counter
from typing import Any

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from visualdm.spatial.rtree import InvalidBoxError, RTree

# Half-unit grid coordinates make touching edges, duplicates and distance ties common.
coord = st.integers(0, 60).map(lambda v: v / 2)
extent = st.sampled_from([0.0, 0.0, 0.5, 1.0, 2.0, 5.0, 12.5])
boxes = st.tuples(coord, coord, extent, extent).map(
    lambda t: (t[0], t[1], t[0] + t[2], t[1] + t[3])
)
points = st.tuples(
    st.integers(-4, 68).map(lambda v: v / 2), st.integers(-4, 68).map(lambda v: v / 2)
)
query_boxes = st.tuples(points, st.floats(0, 40), st.floats(0, 40)).map(
    lambda t: (t[0][0], t[0][1], t[0][0] + t[1], t[0][1] + t[2])
)
max_distances = st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, 3.0, 10.0]))


def odd_id(item: tuple[Any, ...]) -> bool:
    """Predicate used in kNN tests."""
    return bool(item[4] % 2)


predicates = st.sampled_from([None, odd_id])


def sq_dist(item: tuple[Any, ...], x: float, y: float) -> float:
    """Squared point-to-box distance, computed independently of the tree."""
    dx = max(item[0] - x, 0.0, x - item[2])
    dy = max(item[1] - y, 0.0, y - item[3])
    return dx * dx + dy * dy


def brute_search(items: list[tuple[Any, ...]], q: tuple[float, ...]) -> list[tuple[Any, ...]]:
    """Items intersecting q."""
    return [i for i in items if i[0] <= q[2] and i[1] <= q[3] and i[2] >= q[0] and i[3] >= q[1]]


def brute_knn(
    tree: RTree, x: float, y: float, k: int, max_distance: float | None, predicate: Any
) -> list[Any]:
    """The k nearest items, ties in the tree's depth-first order (`all()`)."""
    ranked = sorted(enumerate(tree.all()), key=lambda p: (sq_dist(p[1], x, y), p[0]))
    out = [
        it
        for _, it in ranked
        if (max_distance is None or sq_dist(it, x, y) <= max_distance * max_distance)
        and (predicate is None or predicate(it))
    ]
    return out[:k]


def ids(items: list[tuple[Any, ...]]) -> Counter[int]:
    """Multiset of object identities."""
    return Counter(map(id, items))


def check_structure(tree: RTree) -> None:
    """Assert the R-tree invariants on the snapshot of `tree` and inside the C core."""
    tree._check_invariants()
    snap = tree.to_dict()
    json.dumps(snap)
    m_max = tree.max_entries
    m_min = max(2, math.ceil(m_max * 0.4))
    root = snap["root"]
    if root is None:
        assert len(tree) == 0
        assert tree.all() == []
        return
    count = 0

    def walk(node: list[Any], is_root: bool) -> None:
        nonlocal count
        height, x0, y0, x1, y1, kids = node
        assert len(kids) <= m_max
        if not is_root:
            assert len(kids) >= m_min
        elif height > 1:
            assert len(kids) >= 2
        boxes = [k[:4] if height == 1 else k[1:5] for k in kids]
        assert [x0, y0, x1, y1] == [
            min(b[0] for b in boxes),
            min(b[1] for b in boxes),
            max(b[2] for b in boxes),
            max(b[3] for b in boxes),
        ]
        if height == 1:
            count += len(kids)
        for kid in kids if height > 1 else ():
            assert kid[0] == height - 1
            walk(kid, False)

    walk(root, True)
    assert count == len(tree) == snap["size"]


def make_items(raw: list[tuple[float, float, float, float]], start: int) -> list[tuple[Any, ...]]:
    """Attach increasing integer ids to boxes."""
    return [(*b, start + n) for n, b in enumerate(raw)]


class RTreeMachine(RuleBasedStateMachine):
    """Interleaves every mutation and query, comparing with a plain list after each step."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[Any, ...]] = []
        self.next_id = 0
        self.tree = RTree()

    @initialize(max_entries=st.integers(4, 9))
    def setup(self, max_entries: int) -> None:
        self.tree = RTree(max_entries)

    def fresh(self, raw: list[tuple[float, float, float, float]]) -> list[tuple[Any, ...]]:
        out = make_items(raw, self.next_id)
        self.next_id += len(raw)
        return out

    @rule(box=boxes)
    def insert(self, box: tuple[float, float, float, float]) -> None:
        (item,) = self.fresh([box])
        self.tree.insert(item)
        self.items.append(item)

    @rule(raw=st.lists(boxes, max_size=60))
    def load(self, raw: list[tuple[float, float, float, float]]) -> None:
        batch = self.fresh(raw)
        self.tree.load(batch)
        self.items.extend(batch)

    @rule(raw=st.lists(boxes, max_size=40))
    def load_arrays(self, raw: list[tuple[float, float, float, float]]) -> None:
        start = self.next_id
        self.next_id += len(raw)
        self.tree.load_arrays(
            np.array(raw, dtype=float).reshape(-1, 4), list(range(start, self.next_id))
        )
        got = {it[4]: it for it in self.tree.all() if it[4] >= start}
        assert sorted(got) == list(range(start, self.next_id))
        for n, b in enumerate(raw):
            assert got[start + n][:4] == b
        self.items.extend(got.values())

    @precondition(lambda self: self.items)
    @rule(data=st.data())
    def remove_existing(self, data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(self.items))
        assert self.tree.remove(item)
        self.items.remove(item)

    @precondition(lambda self: self.items)
    @rule(data=st.data())
    def remove_by_equality(self, data: st.DataObject) -> None:
        item = data.draw(st.sampled_from(self.items))
        copy = (*item[:4], item[4])
        assert copy is not item
        assert not self.tree.remove(copy)  # identity by default
        assert self.tree.remove(copy, equals=lambda a, b: a[4] == b[4])
        self.items = [i for i in self.items if i[4] != item[4]]

    @rule(box=boxes)
    def remove_missing(self, box: tuple[float, float, float, float]) -> None:
        assert not self.tree.remove((*box, -1))

    @rule(q=query_boxes)
    def search(self, q: tuple[float, float, float, float]) -> None:
        found = self.tree.search(q)
        assert ids(found) == ids(brute_search(self.items, q))
        assert self.tree.collides(q) == bool(found)

    @rule(qs=st.lists(query_boxes, max_size=5))
    def search_many(self, qs: list[tuple[float, float, float, float]]) -> None:
        batch = self.tree.search_many(np.array(qs, dtype=float).reshape(-1, 4))
        assert [ids(b) for b in batch] == [ids(self.tree.search(q)) for q in qs]

    @rule(p=points, k=st.integers(0, 12), max_distance=max_distances, predicate=predicates)
    def knn(
        self, p: tuple[float, float], k: int, max_distance: float | None, predicate: Any
    ) -> None:
        got = self.tree.knn(p[0], p[1], k, max_distance=max_distance, predicate=predicate)
        assert got == brute_knn(self.tree, p[0], p[1], k, max_distance, predicate)
        everything = [
            sq_dist(i, *p)
            for i in self.items
            if (max_distance is None or sq_dist(i, *p) <= max_distance**2)
            and (predicate is None or predicate(i))
        ]
        assert [sq_dist(i, *p) for i in got] == sorted(everything)[:k]

    @rule(
        ps=st.lists(points, max_size=5),
        k=st.integers(0, 12),
        max_distance=max_distances,
        predicate=predicates,
    )
    def knn_many(
        self, ps: list[tuple[float, float]], k: int, max_distance: float | None, predicate: Any
    ) -> None:
        batch = self.tree.knn_many(
            np.array(ps, dtype=float).reshape(-1, 2),
            k,
            max_distance=max_distance,
            predicate=predicate,
        )
        single = [
            self.tree.knn(x, y, k, max_distance=max_distance, predicate=predicate) for x, y in ps
        ]
        assert batch == single

    @rule()
    def round_trip(self) -> None:
        snap = self.tree.to_dict()
        copy = RTree.from_dict(json.loads(json.dumps(snap)))
        assert copy.to_dict() == snap
        assert [list(i) for i in copy.all()] == [list(i) for i in self.tree.all()]
        assert copy.knn(15, 15, 5) == [tuple(i) for i in self.tree.knn(15, 15, 5)]

    @rule()
    def clear(self) -> None:
        self.tree.clear()
        self.items = []

    @invariant()
    def structure(self) -> None:
        note(f"size {len(self.tree)} height {self.tree.height}")
        check_structure(self.tree)
        assert ids(self.tree.all()) == ids(self.items)


TestRTreeMachine = RTreeMachine.TestCase
# Inherits max_examples from the active profile (loaded by conftest before this module).
TestRTreeMachine.settings = settings(stateful_step_count=40)


@given(
    n=st.integers(0, 3000),
    max_entries=st.integers(4, 16),
    seed=st.integers(0, 2**32 - 1),
)
def test_bulk_load_is_balanced_and_filled(n: int, max_entries: int, seed: int) -> None:
    """OMT packs of any size keep every node between min and max fill at one leaf depth."""
    rng = np.random.default_rng(seed)
    lo = rng.random((n, 2)) * 100
    arr = np.hstack([lo, lo + rng.random((n, 2))])
    tree = RTree(max_entries)
    tree.load_arrays(arr, list(range(n)))
    check_structure(tree)
    q = (20.0, 20.0, 40.0, 35.0)
    assert sorted(i[4] for i in tree.search(q)) == sorted(i[4] for i in brute_search(tree.all(), q))


@given(
    first=st.integers(0, 400),
    second=st.integers(0, 400),
    max_entries=st.integers(4, 9),
    seed=st.integers(0, 2**32 - 1),
)
def test_load_into_non_empty_tree_merges(
    first: int, second: int, max_entries: int, seed: int
) -> None:
    """Loading into a populated tree keeps the invariants whatever the two sizes are."""
    rng = np.random.default_rng(seed)
    tree = RTree(max_entries)
    items = []
    for start, n in ((0, first), (first, second)):
        lo = rng.random((n, 2)) * 50
        batch = [
            (*b, start + i)
            for i, b in enumerate(np.hstack([lo, lo + rng.random((n, 2)) * 3]).tolist())
        ]
        tree.load(batch)
        items += batch
        check_structure(tree)
    assert ids(tree.all()) == ids(items)


@given(raw=st.lists(boxes, min_size=1, max_size=200), ps=st.lists(points, min_size=1, max_size=8))
def test_batch_queries_match_single_calls(
    raw: list[tuple[float, float, float, float]], ps: Any
) -> None:
    """search_many and knn_many agree with search and knn on a bulk-loaded tree."""
    tree = RTree(4)
    tree.load(make_items(raw, 0))
    qs = np.array([(x, y, x + 7, y + 3) for x, y in ps])
    assert [ids(b) for b in tree.search_many(qs)] == [ids(tree.search(q)) for q in qs.tolist()]
    assert tree.knn_many(np.array(ps), 7) == [tree.knn(x, y, 7) for x, y in ps]


BAD_BOXES = [
    (math.nan, 0.0, 1.0, 1.0),
    (0.0, 0.0, math.inf, 1.0),
    (-math.inf, 0.0, 1.0, 1.0),
    (0.0, math.nan, 1.0, math.nan),
    (2.0, 0.0, 1.0, 1.0),
    (0.0, 2.0, 1.0, 1.0),
]


def populated() -> RTree:
    """A tree of 50 small boxes."""
    tree = RTree(4)
    tree.load([(i, i, i + 1.0, i + 1.0, i) for i in range(50)])
    return tree


@pytest.mark.parametrize("box", BAD_BOXES)
def test_bad_boxes_are_rejected_and_leave_tree_unchanged(box: tuple[float, ...]) -> None:
    """NaN, infinite and inverted boxes raise InvalidBoxError and change nothing."""
    tree = populated()
    before = tree.to_dict()
    with pytest.raises(InvalidBoxError):
        tree.insert((*box, "bad"))
    good = [(float(i), 0.0, i + 1.0, 1.0, i) for i in range(30)]
    with pytest.raises(InvalidBoxError):
        tree.load([*good[:20], (*box, "bad"), *good[20:]])
    with pytest.raises(InvalidBoxError):
        tree.load([(*box, "bad")])
    arr = np.array([g[:4] for g in good] + [box])
    with pytest.raises(InvalidBoxError):
        tree.load_arrays(arr, list(range(len(arr))))
    with pytest.raises(InvalidBoxError):
        tree.search(box)
    with pytest.raises(InvalidBoxError):
        tree.collides(box)
    with pytest.raises(InvalidBoxError):
        tree.search_many(np.array([[0.0, 0.0, 1.0, 1.0], box]))
    assert tree.to_dict() == before
    assert isinstance(InvalidBoxError("x"), ValueError)


@pytest.mark.parametrize("point", [(math.nan, 0.0), (0.0, math.inf), (-math.inf, 1.0)])
def test_bad_points_are_rejected(point: tuple[float, float]) -> None:
    """kNN rejects non-finite query points."""
    tree = populated()
    with pytest.raises(InvalidBoxError):
        tree.knn(*point, 3)
    with pytest.raises(InvalidBoxError):
        tree.knn_many(np.array([point]), 3)


@pytest.mark.parametrize(
    "item",
    [
        (0.0, 0.0, 1.0, 1.0),
        [0.0, 0.0, 1.0, 1.0, 1],
        (0.0, 0.0, 1.0, 1.0, 1, 2),
        ("a", 0.0, 1.0, 1.0, 1),
        None,
    ],
)
def test_malformed_items_are_rejected(item: Any) -> None:
    """Items must be 5-tuples of numbers."""
    tree = populated()
    before = tree.to_dict()
    with pytest.raises(InvalidBoxError):
        tree.insert(item)
    with pytest.raises(InvalidBoxError):
        tree.load([(0.0, 0.0, 1.0, 1.0, 1), item])
    assert tree.to_dict() == before


def test_bad_shapes_and_arguments() -> None:
    """Array shapes, id counts, k and max_distance are validated."""
    tree = populated()
    with pytest.raises(InvalidBoxError):
        tree.search_many(np.zeros((3, 3)))
    with pytest.raises(InvalidBoxError):
        tree.knn_many(np.zeros((3, 4)), 1)
    with pytest.raises(ValueError, match="ids"):
        tree.load_arrays(np.zeros((3, 4)), [1, 2])
    with pytest.raises(ValueError, match="non-negative"):
        tree.knn(0, 0, -1)
    with pytest.raises(ValueError, match="max_distance"):
        tree.knn(0, 0, 1, max_distance=math.nan)
    with pytest.raises(ValueError, match="max_entries"):
        RTree(3)
    with pytest.raises(ValueError, match="snapshot"):
        RTree.from_dict({"format": "other"})
    assert len(tree) == 50


def test_empty_tree_queries() -> None:
    """Every query on an empty tree returns nothing."""
    tree = RTree()
    assert tree.search((0, 0, 1, 1)) == []
    assert not tree.collides((0, 0, 1, 1))
    assert tree.knn(0, 0, 3) == []
    assert tree.all() == []
    assert tree.search_many(np.zeros((2, 4))) == [[], []]
    assert tree.knn_many(np.zeros((2, 2)), 3) == [[], []]
    assert not tree.remove((0, 0, 1, 1, 1))
    assert RTree.from_dict(tree.to_dict()).to_dict() == tree.to_dict()


def test_knn_ties_follow_tree_order() -> None:
    """Equal-distance items come back in depth-first order, identically after a round trip."""
    tree = RTree(4)
    tree.load([(5.0, 5.0, 5.0, 5.0, i) for i in range(40)])
    assert tree.knn(0, 0, 40) == tree.all()
    assert [i[4] for i in RTree.from_dict(tree.to_dict()).knn(0, 0, 10)] == [
        i[4] for i in tree.all()[:10]
    ]


class Tag:
    """A weak-referenceable id, to see when the tree lets go of an item."""

    def __init__(self, n: int) -> None:
        self.n = n


def test_items_are_held_while_stored_and_released_after() -> None:
    """The tree owns one reference per stored item: none leaked, none dropped early."""
    tree = RTree(4)
    tags = [Tag(i) for i in range(300)]
    refs = [weakref.ref(t) for t in tags]
    tree.load([(i, i, i + 1.0, i + 1.0, t) for i, t in enumerate(tags[:200])])
    for i, t in enumerate(tags[200:], 200):
        tree.insert((i, i, i + 1.0, i + 1.0, t))
    del tags, t
    gc.collect()
    assert all(r() is not None for r in refs)
    victim = tree.search((0, 0, 0.5, 0.5))[0]
    before = sys.getrefcount(victim)
    assert tree.remove(victim)
    assert sys.getrefcount(victim) == before - 1
    del victim
    assert refs[0]() is None
    assert sum(r() is None for r in refs) == 1
    for item in tree.search((100, 100, 140, 140)):
        assert tree.remove(item, equals=lambda a, b: a[4] is b[4])
    del item
    assert sum(r() is None for r in refs) == 43  # 1 + items 99..140
    tree._check_invariants()  # (ids are not JSON, so not check_structure)
    copied = RTree.from_dict(tree.to_dict())  # copies: new tuples, the same ids
    tree.clear()
    assert sum(r() is None for r in refs) == 43  # 1 + items 99..140
    del copied
    gc.collect()
    assert all(r() is None for r in refs)


def test_query_results_hold_their_own_references() -> None:
    """Results stay valid after the tree forgets or drops the items."""
    tree = RTree(4)
    tree.load([(i, 0.0, i + 1.0, 1.0, Tag(i)) for i in range(100)])
    found = tree.search((0, 0, 10, 1))
    near = tree.knn(0, 0, 5)
    many = tree.search_many(np.array([[0.0, 0.0, 10.0, 1.0]]))
    everything = tree.all()
    del tree
    gc.collect()
    assert sorted(i[4].n for i in found) == list(range(11))
    assert [i[4].n for i in near] == list(range(5))
    assert sorted(i[4].n for i in many[0]) == list(range(11))
    assert sorted(i[4].n for i in everything) == list(range(100))


def test_load_arrays_refcounts_and_cycles() -> None:
    """Tuples built by load_arrays hold their ids; a cycle through the tree is collected."""
    tree = RTree(4)
    tags = [Tag(i) for i in range(50)]
    refs = [weakref.ref(t) for t in tags]
    tree.load_arrays(np.array([[i, i, i + 1, i + 1] for i in range(50)], dtype=float), tags)
    tags[0].tree = tree  # type: ignore[attr-defined]  # tree -> item -> Tag -> tree
    del tags, tree
    gc.collect()
    assert all(r() is None for r in refs)


def test_callback_exceptions_propagate_and_leave_tree_intact() -> None:
    """Errors raised by a predicate or an equality come out unchanged; nothing is modified."""
    tree = populated()
    before = tree.to_dict()

    def boom(*_: Any) -> bool:
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        tree.knn(3, 3, 5, predicate=boom)
    with pytest.raises(KeyError, match="boom"):
        tree.knn_many(np.array([[3.0, 3.0]]), 5, predicate=boom)
    with pytest.raises(KeyError, match="boom"):
        tree.remove((3.0, 3.0, 4.0, 4.0, 3), equals=boom)

    class Falsy:
        def __bool__(self) -> bool:
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        tree.knn(3, 3, 5, predicate=lambda _: Falsy())  # type: ignore[arg-type,return-value]
    assert tree.to_dict() == before
    check_structure(tree)


def test_callbacks_cannot_change_the_tree_under_a_traversal() -> None:
    """A predicate or equality that mutates the tree gets RuntimeError; reads are fine."""
    tree = populated()
    before = tree.to_dict()

    def mutate(_: Any, *__: Any) -> bool:
        tree.insert((0.0, 0.0, 1.0, 1.0, "new"))
        return True

    with pytest.raises(RuntimeError):
        tree.knn(0, 0, 3, predicate=mutate)
    with pytest.raises(RuntimeError):
        tree.remove((3.0, 3.0, 4.0, 4.0, 3), equals=mutate)

    def read(item: Any, *_: Any) -> bool:
        return bool(tree.search(item[:4])) and len(tree.knn(item[0], item[1], 2)) == 2

    assert len(tree.knn(0, 0, 3, predicate=read)) == 3
    assert tree.remove((3.0, 3.0, 4.0, 4.0, 3), equals=lambda a, b: read(b) and a[4] == b[4])
    assert len(tree) == len(before["root"] and tree.all())
    tree.insert((3.0, 3.0, 4.0, 4.0, 3))
    check_structure(tree)


def test_remove_with_equality_callable() -> None:
    """equals(item, stored) picks the first stored match in depth-first order."""
    tree = RTree(4)
    tree.load([(float(i % 7), 0.0, i % 7 + 1.0, 1.0, i) for i in range(60)])
    calls: list[tuple[Any, Any]] = []

    def same_id(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return bool(a[4] == b[4])

    assert tree.remove((3.0, 0.0, 4.0, 1.0, 10), equals=same_id)
    assert calls
    assert all(c[0][4] == 10 for c in calls)
    assert calls[-1][1][4] == 10
    assert 10 not in {i[4] for i in tree.all()}
    # The equality only sees stored items inside the given box's region.
    assert not tree.remove((50.0, 50.0, 51.0, 51.0, 11), equals=same_id)
    assert not tree.remove("not an item")  # type: ignore[arg-type]
    assert not tree.remove((1, 2))  # type: ignore[arg-type]
    assert len(tree) == 59
    check_structure(tree)


def test_big_load_matches_numpy() -> None:
    """A 200,000-item load (merged into a populated tree) answers like a numpy scan."""
    rng = np.random.default_rng(7)
    n = 200_000
    lo = rng.random((n, 2)) * 100
    arr = np.hstack([lo, lo + rng.random((n, 2))])
    tree = RTree(16)
    tree.load([(*b, -1 - i) for i, b in enumerate(arr[:1000].tolist())])
    tree.load_arrays(arr, np.arange(n))
    assert len(tree) == n + 1000
    check_structure(tree)
    everything = np.vstack([arr, arr[:1000]])
    for q in ([10.0, 10.0, 12.0, 13.0], [0.0, 0.0, 100.0, 0.5], [50.0, 50.0, 50.0, 50.0]):
        hit = (
            (everything[:, 0] <= q[2])
            & (everything[:, 1] <= q[3])
            & (everything[:, 2] >= q[0])
            & (everything[:, 3] >= q[1])
        )
        assert len(tree.search(q)) == int(hit.sum())
    x, y = 33.3, 66.6
    dx = np.maximum(np.maximum(everything[:, 0] - x, x - everything[:, 2]), 0)
    dy = np.maximum(np.maximum(everything[:, 1] - y, y - everything[:, 3]), 0)
    nearest = np.sort(dx * dx + dy * dy)[:25]
    got = [sq_dist(i, x, y) for i in tree.knn(x, y, 25)]
    assert got == pytest.approx(nearest.tolist(), abs=0)
    for item in tree.search((20, 20, 30, 30)):
        assert tree.remove(item)
    check_structure(tree)


def test_copy_and_pickle_round_trip() -> None:
    """Copies and pickles go through the snapshot format and rebuild an equal tree."""
    tree = populated()
    for clone in (copy.deepcopy(tree), pickle.loads(pickle.dumps(tree))):  # noqa: S301
        assert clone.to_dict() == tree.to_dict()
        check_structure(clone)


def test_snapshots_of_the_python_implementation_still_load() -> None:
    """A snapshot written by the earlier pure-Python RTree (integer coordinates kept) loads."""
    snap = {
        "format": "visualdm.rtree/1",
        "max_entries": 4,
        "size": 5,
        "root": [
            2, 0, 0, 9.5, 3.0,
            [
                [1, 0, 0, 2.5, 3.0, [[0, 0, 1.5, 1.0, "a"], [2, 1, 2.5, 3.0, "b"]]],
                [1, 5, 0, 9.5, 2.0, [[5, 0, 6.0, 1.0, "c"], [7, 1, 8.0, 2.0, "d"],
                                     [9, 1.5, 9.5, 2.0, "e"]]],
            ],
        ],
    }  # fmt: skip
    tree = RTree.from_dict(snap)
    check_structure(tree)
    assert tree.to_dict() == snap
    assert [i[4] for i in tree.knn(0, 0, 5)] == ["a", "b", "c", "d", "e"]
    assert {i[4] for i in tree.search((6, 0, 8, 1))} == {"c", "d"}


@pytest.mark.parametrize(
    "root",
    [
        [1, 0, 0, 1, 1, [[0, 0, 1, 1, "a"]] * 5],  # more than max_entries
        [2, 0, 0, 1, 1, [[2, 0, 0, 1, 1, [[0, 0, 1, 1, "a"]]]] * 2],  # heights disagree
        [2, 0, 0, 1, 1, [[1, 0, 0, 1, 1, []]] * 2],  # an empty inner child
        [1, 0, 0, 1, 1, [[1, 0, 0, 1, "a"]]],  # inverted item box
        [1, 0, 0, 1, 1],  # not a node
        [1, 0, 0, 1, 1, []],  # a root without items
    ],
)
def test_malformed_snapshots_are_rejected(root: list[Any]) -> None:
    """from_dict refuses snapshots that would break the tree's invariants."""
    with pytest.raises(ValueError, match=r"snapshot|box"):  # InvalidBoxError is a ValueError
        RTree.from_dict({"format": "visualdm.rtree/1", "max_entries": 4, "size": 1, "root": root})


@pytest.mark.parametrize("max_entries", [64, 500])
def test_large_node_capacities(max_entries: int) -> None:
    """Wide nodes (bounded up-front reservations, long split sorts) keep the invariants."""
    rng = np.random.default_rng(max_entries)
    lo = rng.random((6000, 2)) * 100
    items = [(*b, i) for i, b in enumerate(np.hstack([lo, lo + rng.random((6000, 2))]).tolist())]
    tree = RTree(max_entries)
    tree.load(items[:3000])
    for item in items[3000:]:
        tree.insert(item)
    for item in items[::2]:
        assert tree.remove(item)
    check_structure(tree)
    q = (10.0, 10.0, 30.0, 20.0)
    assert ids(tree.search(q)) == ids(brute_search(items[1::2], q))
    assert [sq_dist(i, 50, 50) for i in tree.knn(50, 50, 9)] == sorted(
        sq_dist(i, 50, 50) for i in items[1::2]
    )[:9]
