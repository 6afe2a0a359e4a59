"""Property and stateful tests of the R-tree against a brute-force list oracle."""

from __future__ import annotations

import json
import math
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
    """Assert the R-tree invariants on the snapshot of `tree`."""
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
TestRTreeMachine.settings = settings(stateful_step_count=40)


@given(
    n=st.integers(0, 3000),
    max_entries=st.integers(4, 16),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=40)
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
@settings(max_examples=40)
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
