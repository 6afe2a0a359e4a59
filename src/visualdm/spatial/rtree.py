"""A standalone in-memory 2-D R-tree modelled on RBush (mourner/rbush) and rbush-knn.

Algorithms, as in RBush:

* Search, insertion and node layout follow Guttman, "R-trees: a dynamic index structure for
  spatial searching", SIGMOD 1984. Insertion descends by least area enlargement, then least
  area, without reinsertion.
* Node splits use the R*-tree heuristics of Beckmann, Kriegel, Schneider and Seeger, "The
  R*-tree: an efficient and robust access method for points and rectangles", SIGMOD 1990:
  the split axis minimises the summed margins of all distributions, the split index minimises
  overlap, then area.
* Bulk loading is top-down OMT (Lee and Lee, "OMT: overlap minimizing top-down bulk loading
  algorithm for R-tree", CAiSE 2003), with the per-level sorting done by numpy. Loading into a
  non-empty tree merges the packed subtree at its level, the Small-Tree-Large-Tree approach of
  Chen, Choubey and Rundensteiner (2002) that RBush cites.
* k nearest neighbours is the best-first search of Hjaltason and Samet, "Distance browsing in
  spatial databases", TODS 1999 (the algorithm of rbush-knn).

Deviations from RBush, both so that every non-root node holds between min and max entries:
removal condenses the tree as Guttman does (an underfull node is dropped and its entries are
reinserted at their level) instead of RBush's free-at-empty, and the OMT pack divides items
evenly between the children of a node instead of using a fixed tile size.

Items are tuples ``(min_x, min_y, max_x, max_y, id)`` and queries return those same objects.
Nodes are plain lists ``[min_x, min_y, max_x, max_y, children, height, boxes]`` (leaves have
height 1) so that an item and a node expose their box at the same indices, which keeps the hot
loops free of attribute lookups and type tests. ``boxes`` is a leaf's cache of its items' boxes
as freshly allocated tuples (None until rebuilt after a change): the caller's item tuples and
their floats lie scattered in memory, and reading them dominated query time through cache
misses, while the cache's objects are allocated together and read with few misses.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Iterable, Sequence
from itertools import chain
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from ._rtree_bulk import FlatIndex, FlatLevel, group_bboxes, knn_many, omt_layout, search_many

Item = tuple[Any, ...]
"""An indexed entry: ``(min_x, min_y, max_x, max_y, id)``."""

_Node = list[Any]
_INF = math.inf
_FORMAT = "visualdm.rtree/1"
_box_of = itemgetter(0, 1, 2, 3)
_by_min_x = itemgetter(0)
_by_min_y = itemgetter(1)


class InvalidBoxError(ValueError):
    """A box or point is NaN, infinite, inverted (min > max) or not shaped as required."""


def _empty_leaf() -> _Node:
    """Return a leaf with no children and the empty (inverted infinite) box."""
    return [_INF, _INF, -_INF, -_INF, [], 1, None]


def _check_box(box: Sequence[Any]) -> tuple[float, float, float, float]:
    """Return the four coordinates of `box`, raising InvalidBoxError unless finite and ordered."""
    try:
        x0, y0, x1, y1 = box[0], box[1], box[2], box[3]
        # NaN fails every comparison, so one chained test rejects NaN, infinity and inversion.
        ok = -_INF < x0 <= x1 < _INF and -_INF < y0 <= y1 < _INF
    except (TypeError, IndexError) as exc:
        raise InvalidBoxError(f"expected (min_x, min_y, max_x, max_y, ...), got {box!r}") from exc
    if not ok:
        raise InvalidBoxError(f"box must be finite with min <= max, got {tuple(box[:4])!r}")
    return x0, y0, x1, y1


def _check_item(item: Any) -> None:
    """Raise unless `item` is a 5-tuple with a valid box."""
    if not isinstance(item, tuple) or len(item) != 5:
        raise InvalidBoxError(f"an item is a tuple (min_x, min_y, max_x, max_y, id), got {item!r}")
    _check_box(item)


def _check_array(boxes: npt.ArrayLike, width: int) -> npt.NDArray[np.float64]:
    """Return `boxes` as a float (N, width) array, raising InvalidBoxError if malformed."""
    try:
        arr = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidBoxError(f"expected an (N, {width}) float array: {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InvalidBoxError(f"expected an (N, {width}) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidBoxError("coordinates must be finite (no NaN or infinity)")
    if width == 4 and ((arr[:, 0] > arr[:, 2]).any() or (arr[:, 1] > arr[:, 3]).any()):
        raise InvalidBoxError("boxes must have min <= max on both axes")
    return arr


def _set_bbox(node: _Node) -> None:
    """Recompute a node's box from its children (the empty box if it has none)."""
    x0 = y0 = _INF
    x1 = y1 = -_INF
    for c in node[4]:
        if c[0] < x0:
            x0 = c[0]
        if c[1] < y0:
            y0 = c[1]
        if c[2] > x1:
            x1 = c[2]
        if c[3] > y1:
            y1 = c[3]
    node[0], node[1], node[2], node[3] = x0, y0, x1, y1


def _leaf_boxes(leaf: _Node) -> list[Any]:
    """Rebuild and return a leaf's compact copy of its items' boxes."""
    boxes: list[Any] = [c[:4] for c in leaf[4]]
    leaf[6] = boxes
    return boxes


def _distributions(kids: list[Any], m: int) -> tuple[float, list[Any], list[Any]]:
    """Return (margin sum, prefix boxes, suffix boxes) over the split points m..len-m."""
    n = len(kids)
    prefix: list[Any] = [None] * (n + 1)
    suffix: list[Any] = [None] * (n + 1)
    x0 = y0 = _INF
    x1 = y1 = -_INF
    for i, c in enumerate(kids, 1):
        x0, y0 = min(x0, c[0]), min(y0, c[1])
        x1, y1 = max(x1, c[2]), max(y1, c[3])
        prefix[i] = (x0, y0, x1, y1)
    x0 = y0 = _INF
    x1 = y1 = -_INF
    for i in range(n - 1, -1, -1):
        c = kids[i]
        x0, y0 = min(x0, c[0]), min(y0, c[1])
        x1, y1 = max(x1, c[2]), max(y1, c[3])
        suffix[i] = (x0, y0, x1, y1)
    margin = 0.0
    for i in range(m, n - m + 1):
        a, b = prefix[i], suffix[i]
        margin += a[2] - a[0] + a[3] - a[1] + b[2] - b[0] + b[3] - b[1]
    return margin, prefix, suffix


class RTree:
    """RBush-style dynamic R-tree over ``(min_x, min_y, max_x, max_y, id)`` tuples."""

    __slots__ = ("_flat", "_flat_source", "_max_entries", "_min_entries", "_root", "_size")

    def __init__(self, max_entries: int = 9) -> None:
        """Create an empty tree whose nodes hold at most `max_entries` (>= 4) children."""
        if max_entries < 4:
            raise ValueError("max_entries must be at least 4")
        self._max_entries = max_entries
        self._min_entries = max(2, math.ceil(max_entries * 0.4))
        self._root: _Node = _empty_leaf()
        self._size = 0
        self._flat: FlatIndex | None = None
        # After a bulk load into an empty tree: the arrays from which _flat is cheap to build.
        self._flat_source: tuple[list[FlatLevel], npt.NDArray[np.float64], list[Item]] | None = None

    def _changed(self) -> None:
        """Drop the batch-query snapshot after a mutation."""
        self._flat = None
        self._flat_source = None

    @property
    def max_entries(self) -> int:
        """Node capacity."""
        return self._max_entries

    @property
    def height(self) -> int:
        """Number of node levels (1 for a tree whose root is a leaf)."""
        return int(self._root[5])

    def __len__(self) -> int:
        """Number of items."""
        return self._size

    def clear(self) -> None:
        """Remove every item."""
        self._root = _empty_leaf()
        self._size = 0
        self._changed()

    def all(self) -> list[Item]:
        """Return every item in depth-first order (the order kNN uses to break ties)."""
        result: list[Item] = []
        self._collect(self._root, result)
        return result

    @staticmethod
    def _collect(node: _Node, result: list[Item]) -> None:
        """Append the items under `node` to `result` in depth-first order."""
        if node[5] == 1:
            result.extend(node[4])
        elif node[5] == 2:
            for leaf in node[4]:
                result.extend(leaf[4])
        else:
            for child in node[4]:
                RTree._collect(child, result)

    def search(self, bbox: Sequence[float]) -> list[Item]:
        """Return the items whose box intersects `bbox` (touching edges count), in no set order."""
        qx0, qy0, qx1, qy1 = _check_box(bbox)
        node = self._root
        result: list[Item] = []
        if not (node[0] <= qx1 and node[1] <= qy1 and node[2] >= qx0 and node[3] >= qy0):
            return result
        stack = [node]
        pop, push, extend, collect = stack.pop, stack.append, result.extend, self._collect
        while stack:
            node = pop()
            if node[5] == 1:
                boxes = node[6] or _leaf_boxes(node)
                extend(
                    [
                        it
                        for it, c in zip(node[4], boxes, strict=True)
                        if c[0] <= qx1 and c[1] <= qy1 and c[2] >= qx0 and c[3] >= qy0
                    ]
                )
                continue
            for c in node[4]:
                if c[0] <= qx1 and c[1] <= qy1 and c[2] >= qx0 and c[3] >= qy0:
                    if qx0 <= c[0] and qy0 <= c[1] and c[2] <= qx1 and c[3] <= qy1:
                        # Wholly inside the query: take the subtree without further tests.
                        if c[5] == 1:
                            extend(c[4])
                        else:
                            collect(c, result)
                    else:
                        push(c)
        return result

    def collides(self, bbox: Sequence[float]) -> bool:
        """Return whether any item's box intersects `bbox`."""
        qx0, qy0, qx1, qy1 = _check_box(bbox)
        node = self._root
        if not (node[0] <= qx1 and node[1] <= qy1 and node[2] >= qx0 and node[3] >= qy0):
            return False
        stack = [node]
        while stack:
            node = stack.pop()
            leaf = node[5] == 1
            for c in node[6] or _leaf_boxes(node) if leaf else node[4]:
                if c[0] <= qx1 and c[1] <= qy1 and c[2] >= qx0 and c[3] >= qy0:
                    if leaf or (qx0 <= c[0] and qy0 <= c[1] and c[2] <= qx1 and c[3] <= qy1):
                        return True
                    stack.append(c)
        return False

    def knn(
        self,
        x: float,
        y: float,
        k: int,
        *,
        max_distance: float | None = None,
        predicate: Callable[[Item], bool] | None = None,
    ) -> list[Item]:
        """Return up to `k` items nearest to (x, y), nearest first, by point-to-box distance.

        Items at equal distance come in depth-first tree order (the order of `all()`), which
        is deterministic for a given sequence of operations and survives `to_dict`/`from_dict`.
        Only items within `max_distance` (inclusive) and accepted by `predicate` are returned.
        """
        _check_box((x, y, x, y))
        limit = self._limit(max_distance)
        if k < 0:
            raise ValueError("k must be non-negative")
        result: list[Item] = []
        if k == 0 or not self._size:
            return result
        mult = self._max_entries + 1
        heap: list[tuple[float, int, Any]] = []
        push, pop = heapq.heappush, heapq.heappop
        node, key = self._root, 1
        # Heap keys are (squared distance, tie). An item's tie is its depth-first path number
        # (>= 0); a node's is negative so that at equal distance nodes are expanded before items
        # are emitted, which makes equal-distance items come out in depth-first order.
        while True:
            base = key * mult
            leaf = node[5] == 1
            kids = node[4]
            for i, c in enumerate(node[6] or _leaf_boxes(node) if leaf else kids):
                a = c[0]
                if x < a:
                    dx = a - x
                else:
                    a = c[2]
                    dx = x - a if x > a else 0.0
                a = c[1]
                if y < a:
                    dy = a - y
                else:
                    a = c[3]
                    dy = y - a if y > a else 0.0
                d = dx * dx + dy * dy
                if d <= limit:
                    push(heap, (d, base + i if leaf else -1 - base - i, kids[i]))
            while heap and heap[0][1] >= 0:
                item = pop(heap)[2]
                if predicate is None or predicate(item):
                    result.append(item)
                    if len(result) == k:
                        return result
            if not heap:
                return result
            _, tie, node = pop(heap)
            key = -1 - tie

    @staticmethod
    def _limit(max_distance: float | None) -> float:
        """Return the squared distance limit for `max_distance` (infinite if None)."""
        if max_distance is None:
            return _INF
        if not max_distance >= 0:
            raise ValueError("max_distance must be a non-negative number")
        return float(max_distance) * float(max_distance)

    def insert(self, item: Item) -> None:
        """Add one item; raises InvalidBoxError (tree unchanged) for a bad box."""
        _check_item(item)
        self._insert_entry(item, 1)
        self._size += 1
        self._changed()

    def _insert_entry(self, entry: Any, target: int) -> None:
        """Put an item (target 1) or a node (target: its height + 1) in a node of height target."""
        ex0, ey0, ex1, ey1 = entry[0], entry[1], entry[2], entry[3]
        node = self._root
        path = []
        while True:
            # Enlarging on the way down is final: splits below only redistribute the same union.
            if ex0 < node[0]:
                node[0] = ex0
            if ey0 < node[1]:
                node[1] = ey0
            if ex1 > node[2]:
                node[2] = ex1
            if ey1 > node[3]:
                node[3] = ey1
            path.append(node)
            if node[5] == target:
                break
            best = node
            best_enl = best_area = _INF
            for c in node[4]:
                cx0, cy0, cx1, cy1 = c[0], c[1], c[2], c[3]
                area = (cx1 - cx0) * (cy1 - cy0)
                enl = (
                    ((ex1 if ex1 > cx1 else cx1) - (ex0 if ex0 < cx0 else cx0))
                    * ((ey1 if ey1 > cy1 else cy1) - (ey0 if ey0 < cy0 else cy0))
                ) - area
                if enl < best_enl or (enl == best_enl and area < best_area):
                    best, best_enl, best_area = c, enl, area
            node = best
        node[4].append(entry)
        node[6] = None
        level = len(path) - 1
        max_entries = self._max_entries
        while level >= 0 and len(path[level][4]) > max_entries:
            self._split(path, level)
            level -= 1

    def _split(self, path: list[_Node], level: int) -> None:
        """Split the overflowing node path[level] in two, R*-style."""
        node = path[level]
        m = self._min_entries
        by_x = sorted(node[4], key=_by_min_x)
        by_y = sorted(node[4], key=_by_min_y)
        margin_x, pre_x, suf_x = _distributions(by_x, m)
        margin_y, pre_y, suf_y = _distributions(by_y, m)
        kids, pre, suf = (by_x, pre_x, suf_x) if margin_x < margin_y else (by_y, pre_y, suf_y)
        n = len(kids)
        split = n - m
        best_overlap = best_area = _INF
        for i in range(m, n - m + 1):
            a, b = pre[i], suf[i]
            w = min(a[2], b[2]) - max(a[0], b[0])
            h = min(a[3], b[3]) - max(a[1], b[1])
            overlap = w * h if w > 0 and h > 0 else 0.0
            area = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
            if overlap < best_overlap or (overlap == best_overlap and area < best_area):
                split, best_overlap, best_area = i, overlap, area
        node[4] = kids[:split]
        node[6] = None
        node[0], node[1], node[2], node[3] = pre[split]
        sibling = [*suf[split], kids[split:], node[5], None]
        if level:
            path[level - 1][4].append(sibling)
        else:
            self._root = self._make_parent([node, sibling])

    @staticmethod
    def _make_parent(children: list[_Node]) -> _Node:
        """Return a new node one level above `children`."""
        parent = [0.0, 0.0, 0.0, 0.0, children, children[0][5] + 1, None]
        _set_bbox(parent)
        return parent

    def remove(self, item: Item, equals: Callable[[Item, Item], bool] | None = None) -> bool:
        """Remove one stored item and return whether one was found.

        Matches by identity, or by ``equals(item, stored)`` among stored items whose box lies
        within `item`'s box region (as RBush); the first match in depth-first order goes.
        """
        try:
            bx0, by0, bx1, by1 = item[0], item[1], item[2], item[3]
        except (TypeError, IndexError):
            return False
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        path: list[_Node] = []
        while stack:
            node, depth = stack.pop()
            del path[depth:]
            path.append(node)
            kids = node[4]
            if node[5] > 1:
                # Reversed so that the leftmost child is visited first.
                stack.extend(
                    (c, depth + 1)
                    for c in reversed(kids)
                    if c[0] <= bx0 and c[1] <= by0 and c[2] >= bx1 and c[3] >= by1
                )
                continue
            for i, c in enumerate(kids):
                if c is item if equals is None else equals(item, c):
                    del kids[i]
                    node[6] = None
                    self._condense(path)
                    self._size -= 1
                    self._changed()
                    return True
        return False

    def _condense(self, path: list[_Node]) -> None:
        """After a removal at path[-1], drop underfull nodes, refit boxes, reinsert orphans."""
        orphans: list[tuple[Any, int]] = []
        for i in range(len(path) - 1, 0, -1):
            node = path[i]
            if len(node[4]) < self._min_entries:
                siblings = path[i - 1][4]
                del siblings[next(j for j, s in enumerate(siblings) if s is node)]
                orphans.extend((c, node[5]) for c in node[4])
            else:
                _set_bbox(node)
        root = path[0]
        _set_bbox(root)
        while root[5] > 1 and len(root[4]) == 1:
            root = root[4][0]
        if not root[4]:
            root = _empty_leaf()
        self._root = root
        # Higher entries first so that the tree is tall enough for them.
        for entry, target in sorted(orphans, key=itemgetter(1), reverse=True):
            self._insert_entry(entry, target)

    def load(self, items: Iterable[Item]) -> None:
        """Bulk-load items (OMT pack, merged into a non-empty tree); all-or-nothing on bad input."""
        data = items if isinstance(items, list) else list(items)
        for item in data:
            if not isinstance(item, tuple) or len(item) != 5:
                _check_item(item)
        try:
            coords = np.fromiter(chain.from_iterable(map(_box_of, data)), np.float64, 4 * len(data))
        except (TypeError, ValueError) as exc:
            raise InvalidBoxError(f"coordinates must be numbers: {exc}") from exc
        boxes = _check_array(coords.reshape(-1, 4), 4)
        if len(data) < self._min_entries:
            for item in data:
                self._insert_entry(item, 1)
            self._size += len(data)
            self._changed()
            return
        order, leaf_sizes, fanouts = omt_layout(boxes[:, 0], boxes[:, 1], self._max_entries)
        ordered = [data[i] for i in order.tolist()]
        self._graft(ordered, boxes[order], leaf_sizes, fanouts)

    def load_arrays(self, boxes: npt.ArrayLike, ids: Sequence[Any] | npt.NDArray[Any]) -> None:
        """Bulk-load items ``(*boxes[i], ids[i])`` from an (N, 4) array; all-or-nothing."""
        arr = _check_array(boxes, 4)
        if len(ids) != len(arr):
            raise ValueError(f"{len(arr)} boxes but {len(ids)} ids")
        if len(arr) < self._min_entries:
            self.load([(*row, i) for row, i in zip(arr.tolist(), ids, strict=True)])
            return
        order, leaf_sizes, fanouts = omt_layout(arr[:, 0], arr[:, 1], self._max_entries)
        sorted_boxes = arr[order]
        ordered_ids = (
            ids[order].tolist() if isinstance(ids, np.ndarray) else [ids[i] for i in order.tolist()]
        )
        ordered = list(zip(*sorted_boxes.T.tolist(), ordered_ids, strict=True))
        self._graft(ordered, sorted_boxes, leaf_sizes, fanouts)

    def _graft(
        self,
        ordered: list[Item],
        boxes: npt.NDArray[np.float64],
        leaf_sizes: npt.NDArray[np.int64],
        fanouts: list[npt.NDArray[np.int64]],
    ) -> None:
        """Assemble the packed subtree bottom-up and merge it into the tree."""
        starts = np.zeros(len(leaf_sizes), dtype=np.int64)
        np.cumsum(leaf_sizes[:-1], out=starts[1:])
        bx = group_bboxes(boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3], starts)
        ends = (starts + leaf_sizes).tolist()
        cols = [a.tolist() for a in bx]
        # Tuples of floats drop out of the cyclic GC's tracking, so a large load does not make
        # every later collection walk a million extra containers.
        box_lists = list(zip(*boxes.T.tolist(), strict=True))
        nodes: list[_Node] = [
            [a, b, c, d, ordered[s:e], 1, box_lists[s:e]]
            for a, b, c, d, s, e in zip(*cols, starts.tolist(), ends, strict=True)
        ]
        item_start = np.append(starts, len(ordered))
        levels = [FlatLevel(*bx, item_start, item_start)]
        height = 1
        for k in fanouts:
            height += 1
            starts = np.zeros(len(k), dtype=np.int64)
            np.cumsum(k[:-1], out=starts[1:])
            child_start = np.append(starts, len(nodes))
            bx = group_bboxes(*bx, starts)
            levels.append(FlatLevel(*bx, child_start, levels[-1].item_start[child_start]))
            ends = (starts + k).tolist()
            cols = [a.tolist() for a in bx]
            nodes = [
                [a, b, c, d, nodes[s:e], height, None]
                for a, b, c, d, s, e in zip(*cols, starts.tolist(), ends, strict=True)
            ]
        (packed,) = nodes
        was_empty = not self._size
        if was_empty:
            self._root = packed
        else:
            self._merge(packed)
        self._size += len(ordered)
        self._changed()
        if was_empty:
            levels.reverse()
            self._flat_source = (levels, boxes, ordered)

    def _merge(self, packed: _Node) -> None:
        """Merge a packed subtree into the tree without creating underfull nodes."""
        small, big = packed, self._root
        if (small[5], len(small[4])) > (big[5], len(big[4])):
            small, big = big, small
            self._root = big
        m = self._min_entries
        if len(small[4]) < m:
            # An underfull root cannot become an inner node; place its children instead.
            for child in small[4]:
                self._insert_entry(child, small[5])
        elif small[5] == big[5]:
            if len(big[4]) < m:
                for child in big[4]:
                    self._insert_entry(child, big[5])
            else:
                self._root = self._make_parent([big, small])
        else:
            self._insert_entry(small, small[5] + 1)

    def to_dict(self) -> dict[str, Any]:
        """Return a snapshot, JSON-serialisable if the ids are, that `from_dict` rebuilds."""

        def dump(node: _Node) -> list[Any]:
            kids = [list(c) if node[5] == 1 else dump(c) for c in node[4]]
            return [node[5], node[0], node[1], node[2], node[3], kids]

        root: list[Any] | None = dump(self._root) if self._size else None
        return {
            "format": _FORMAT,
            "max_entries": self._max_entries,
            "size": self._size,
            "root": root,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RTree:
        """Rebuild the tree captured by `to_dict` (items come back as new tuples)."""
        if data.get("format") != _FORMAT:
            raise ValueError(f"not an RTree snapshot: format {data.get('format')!r}")
        tree = cls(int(data["max_entries"]))

        def build(raw: list[Any]) -> _Node:
            height, x0, y0, x1, y1, kids = raw
            children: list[Any] = [tuple(c) if height == 1 else build(c) for c in kids]
            return [x0, y0, x1, y1, children, height, None]

        if data["root"] is not None:
            tree._root = build(data["root"])
            tree._size = int(data["size"])
        return tree

    def _flat_index(self) -> FlatIndex:
        """Return the array snapshot for batch queries, building it after any change."""
        if self._flat is not None:
            return self._flat
        if self._flat_source is not None:
            packed, boxes, ordered = self._flat_source
            objs = np.fromiter(ordered, dtype=object, count=len(ordered))
            cols = [boxes[:, i].copy() for i in range(4)]
            self._flat = FlatIndex(packed, cols[0], cols[1], cols[2], cols[3], objs, ordered)
            return self._flat
        levels: list[FlatLevel] = []
        nodes = [self._root]
        while True:
            counts = np.fromiter(map(len, map(itemgetter(4), nodes)), np.int64, len(nodes))
            child_start = np.zeros(len(nodes) + 1, dtype=np.int64)
            np.cumsum(counts, out=child_start[1:])
            box = np.array([n[:4] for n in nodes], dtype=np.float64).reshape(-1, 4)
            levels.append(
                FlatLevel(box[:, 0], box[:, 1], box[:, 2], box[:, 3], child_start, child_start)
            )
            below: list[Any] = [c for n in nodes for c in n[4]]
            if nodes[0][5] == 1:
                break
            nodes = below
        # A node's item range is the item range of its first child to that of its last child.
        for upper, lower in zip(levels[-2::-1], levels[:0:-1], strict=True):
            upper.item_start = lower.item_start[upper.child_start]
        n = len(below)
        coords = np.fromiter(chain.from_iterable(map(_box_of, below)), np.float64, 4 * n).reshape(
            n, 4
        )
        items = np.fromiter(below, dtype=object, count=n)
        self._flat = FlatIndex(
            levels, coords[:, 0], coords[:, 1], coords[:, 2], coords[:, 3], items, below
        )
        return self._flat

    def search_many(self, boxes: npt.ArrayLike) -> list[list[Item]]:
        """Return `search(box)` for each row of an (M, 4) array, computed in vectorised batches."""
        arr = _check_array(boxes, 4)
        if not self._size:
            return [[] for _ in range(len(arr))]
        flat = self._flat_index()
        out: list[list[Item]] = []
        # Chunks bound the temporary pair arrays for queries with many hits.
        for s in range(0, len(arr), 256):
            c = arr[s : s + 256]
            out.extend(
                search_many(flat, c[:, 0].copy(), c[:, 1].copy(), c[:, 2].copy(), c[:, 3].copy())
            )
        return out

    def knn_many(
        self,
        points: npt.ArrayLike,
        k: int,
        *,
        max_distance: float | None = None,
        predicate: Callable[[Item], bool] | None = None,
    ) -> list[list[Item]]:
        """Return `knn(x, y, k, ...)` for each row of an (M, 2) array, with identical results.

        Vectorised unless a predicate is given, in which case it loops over `knn`.
        """
        arr = _check_array(points, 2)
        limit = self._limit(max_distance)
        if k < 0:
            raise ValueError("k must be non-negative")
        if predicate is not None:
            return [
                self.knn(x, y, k, max_distance=max_distance, predicate=predicate)
                for x, y in arr.tolist()
            ]
        if k == 0 or not self._size:
            return [[] for _ in range(len(arr))]
        flat = self._flat_index()
        out: list[list[Item]] = []
        for s in range(0, len(arr), 4096):
            c = arr[s : s + 4096]
            out.extend(knn_many(flat, c[:, 0].copy(), c[:, 1].copy(), k, limit))
        return out
