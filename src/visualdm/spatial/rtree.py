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
  algorithm for R-tree", CAiSE 2003), partitioning with quickselect as RBush does. Loading into
  a non-empty tree merges the packed subtree at its level, the Small-Tree-Large-Tree approach
  of Chen, Choubey and Rundensteiner (2002) that RBush cites.
* k nearest neighbours is the best-first search of Hjaltason and Samet, "Distance browsing in
  spatial databases", TODS 1999 (the algorithm of rbush-knn).

Deviations from RBush, both so that every non-root node holds between min and max entries:
removal condenses the tree as Guttman does (an underfull node is dropped and its entries are
reinserted at their level) instead of RBush's free-at-empty, and the OMT pack divides items
evenly between the children of a node instead of using a fixed tile size.

The tree itself lives in the C extension `_rtree_core` (see docs/adr/0002): nodes are C structs
holding their entries' boxes as contiguous doubles next to one pointer per entry, the caller's
item in a leaf (a counted reference) or a child node above. This module keeps the public class,
validates numpy input and converts snapshots. Items are tuples ``(min_x, min_y, max_x, max_y,
id)`` and queries return those same objects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from ._rtree_core import Core, InvalidBoxError

__all__ = ["InvalidBoxError", "Item", "RTree"]

Item = tuple[Any, ...]
"""An indexed entry: ``(min_x, min_y, max_x, max_y, id)``."""

_FORMAT = "visualdm.rtree/1"


def _check_array(boxes: npt.ArrayLike, width: int) -> npt.NDArray[np.float64]:
    """Return `boxes` as a C-contiguous float (N, width) array, or raise InvalidBoxError."""
    try:
        arr = np.ascontiguousarray(boxes, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidBoxError(f"expected an (N, {width}) float array: {exc}") from exc
    if arr.ndim != 2 or arr.shape[1] != width:
        raise InvalidBoxError(f"expected an (N, {width}) array, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise InvalidBoxError("coordinates must be finite (no NaN or infinity)")
    if width == 4 and ((arr[:, 0] > arr[:, 2]).any() or (arr[:, 1] > arr[:, 3]).any()):
        raise InvalidBoxError("boxes must have min <= max on both axes")
    return arr


class RTree:
    """RBush-style dynamic R-tree over ``(min_x, min_y, max_x, max_y, id)`` tuples."""

    __slots__ = ("_core",)

    def __init__(self, max_entries: int = 9) -> None:
        """Create an empty tree whose nodes hold at most `max_entries` (>= 4) children."""
        if max_entries < 4:
            raise ValueError("max_entries must be at least 4")
        self._core = Core(max_entries)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle (and copy) through the snapshot format."""
        return (type(self).from_dict, (self.to_dict(),))

    @property
    def max_entries(self) -> int:
        """Node capacity."""
        return self._core.max_entries

    @property
    def height(self) -> int:
        """Number of node levels (1 for a tree whose root is a leaf)."""
        return self._core.height

    def __len__(self) -> int:
        """Number of items."""
        return len(self._core)

    def clear(self) -> None:
        """Remove every item."""
        self._core.clear()

    def all(self) -> list[Item]:
        """Return every item in depth-first order (the order kNN uses to break ties)."""
        return self._core.all()

    def search(self, bbox: Sequence[float]) -> list[Item]:
        """Return the items whose box intersects `bbox` (touching edges count), in no set order."""
        return self._core.search(bbox)

    def collides(self, bbox: Sequence[float]) -> bool:
        """Return whether any item's box intersects `bbox`."""
        return self._core.collides(bbox)

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
        return self._core.knn(x, y, k, max_distance, predicate)

    def insert(self, item: Item) -> None:
        """Add one item; raises InvalidBoxError (tree unchanged) for a bad box."""
        self._core.insert(item)

    def remove(self, item: Item, equals: Callable[[Item, Item], bool] | None = None) -> bool:
        """Remove one stored item and return whether one was found.

        Matches by identity, or by ``equals(item, stored)`` among stored items whose box lies
        within `item`'s box region (as RBush); the first match in depth-first order goes.
        """
        return self._core.remove(item, equals)

    def load(self, items: Iterable[Item]) -> None:
        """Bulk-load items (OMT pack, merged into a non-empty tree); all-or-nothing on bad input."""
        self._core.load(items if isinstance(items, list) else list(items))

    def load_arrays(self, boxes: npt.ArrayLike, ids: Sequence[Any] | npt.NDArray[Any]) -> None:
        """Bulk-load items ``(*boxes[i], ids[i])`` from an (N, 4) array; all-or-nothing."""
        arr = _check_array(boxes, 4)
        if len(ids) != len(arr):
            raise ValueError(f"{len(arr)} boxes but {len(ids)} ids")
        self._core.load_arrays(arr, ids.tolist() if isinstance(ids, np.ndarray) else list(ids))

    def to_dict(self) -> dict[str, Any]:
        """Return a snapshot, JSON-serialisable if the ids are, that `from_dict` rebuilds."""
        return {
            "format": _FORMAT,
            "max_entries": self.max_entries,
            "size": len(self),
            "root": self._core.export(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RTree:
        """Rebuild the tree captured by `to_dict` (items come back as new tuples)."""
        if data.get("format") != _FORMAT:
            raise ValueError(f"not an RTree snapshot: format {data.get('format')!r}")
        tree = cls(int(data["max_entries"]))
        if data["root"] is not None:
            tree._core.restore(data["root"])
        return tree

    def search_many(self, boxes: npt.ArrayLike) -> list[list[Item]]:
        """Return `search(box)` for each row of an (M, 4) array, in one call into the C core."""
        return self._core.search_many(_check_array(boxes, 4))

    def knn_many(
        self,
        points: npt.ArrayLike,
        k: int,
        *,
        max_distance: float | None = None,
        predicate: Callable[[Item], bool] | None = None,
    ) -> list[list[Item]]:
        """Return `knn(x, y, k, ...)` for each row of an (M, 2) array, with identical results."""
        return self._core.knn_many(_check_array(points, 2), k, max_distance, predicate)

    def _check_invariants(self) -> None:
        """Raise AssertionError unless the C tree's structure is sound (used by the tests)."""
        self._core.check()
