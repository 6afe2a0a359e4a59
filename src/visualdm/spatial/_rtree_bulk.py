"""Numpy kernels behind `RTree`: OMT bulk-load layout and the flat snapshot for batch queries.

Nothing here knows about the Python node lists of `rtree.py`; the functions take and return
plain arrays so that each step runs as a handful of vectorised numpy calls instead of a
Python loop per node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _exclusive_cumsum(counts: IntArray) -> IntArray:
    """Return the start offset of each run given the run lengths."""
    out = np.zeros(len(counts), dtype=np.int64)
    np.cumsum(counts[:-1], out=out[1:])
    return out


def _expand_ranges(owner: IntArray, starts: IntArray, ends: IntArray) -> tuple[IntArray, IntArray]:
    """Return (owner repeated per element, element index) for the half-open ranges."""
    lengths = ends - starts
    total = int(lengths.sum())
    owners = np.repeat(owner, lengths)
    # Each element's index is its range start plus its offset inside the range.
    shift = np.repeat(starts - _exclusive_cumsum(lengths), lengths)
    return owners, shift + np.arange(total, dtype=np.int64)


def omt_layout(
    min_x: FloatArray, min_y: FloatArray, max_entries: int
) -> tuple[IntArray, IntArray, list[IntArray]]:
    """Return (item order, leaf sizes, per-level fan-outs bottom-up) of a top-down OMT pack.

    Each node of height h holding N items gets k = ceil(N / M**(h-1)) children of sizes
    floor(N/k) or ceil(N/k), arranged as ceil(sqrt(k)) vertical slabs sorted by min x, each
    slab cut into tiles by min y. Splitting evenly (rather than rbush's fixed tile size) keeps
    every non-root node at least half full, so the tree is balanced and respects min fill.
    """
    n = len(min_x)
    m_cap = max_entries
    if n <= m_cap:
        return np.arange(n, dtype=np.int64), np.array([n], dtype=np.int64), []
    height = 1
    capacity = m_cap
    while capacity < n:
        capacity *= m_cap
        height += 1
    # Ranks turn the per-segment sorts into integer sorts on one combined key.
    x_rank = np.empty(n, dtype=np.int64)
    x_rank[np.argsort(min_x, kind="stable")] = np.arange(n, dtype=np.int64)
    y_rank = np.empty(n, dtype=np.int64)
    y_rank[np.argsort(min_y, kind="stable")] = np.arange(n, dtype=np.int64)

    order = np.arange(n, dtype=np.int64)
    seg_of = np.zeros(n, dtype=np.int64)
    seg_n = np.array([n], dtype=np.int64)
    seg_start = np.zeros(1, dtype=np.int64)
    positions = np.arange(n, dtype=np.int64)
    fanouts: list[IntArray] = []
    for h in range(height, 1, -1):
        child_cap = m_cap ** (h - 1)
        k = -(-seg_n // child_cap)
        slabs = np.ceil(np.sqrt(k)).astype(np.int64)
        q = seg_n // k
        r = seg_n % k
        order = order[np.argsort(seg_of * n + x_rank[order])]
        pos = positions - seg_start[seg_of]
        qq = q[seg_of]
        big = r[seg_of] * (qq + 1)
        # The first r children of a segment hold q+1 items, the others q.
        grp = np.where(pos < big, pos // (qq + 1), r[seg_of] + (pos - big) // qq)
        kk = k[seg_of]
        slab = ((grp + 1) * slabs[seg_of] + kk - 1) // kk - 1
        order = order[np.argsort((seg_of * m_cap + slab) * n + y_rank[order])]
        seg_of = _exclusive_cumsum(k)[seg_of] + grp
        seg_n = np.bincount(seg_of, minlength=int(k.sum())).astype(np.int64)
        seg_start = _exclusive_cumsum(seg_n)
        fanouts.append(k)
    fanouts.reverse()
    return order, seg_n, fanouts


def group_bboxes(
    x0: FloatArray, y0: FloatArray, x1: FloatArray, y1: FloatArray, starts: IntArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """Return the bounding boxes of the contiguous groups beginning at `starts`."""
    return (
        np.minimum.reduceat(x0, starts),
        np.minimum.reduceat(y0, starts),
        np.maximum.reduceat(x1, starts),
        np.maximum.reduceat(y1, starts),
    )


@dataclass(slots=True)
class FlatLevel:
    """One tree level as arrays: node boxes, child ranges and item ranges."""

    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray
    child_start: IntArray  # len + 1 offsets into the next level (or the items)
    item_start: IntArray  # len + 1 offsets into the items in depth-first order


@dataclass(slots=True)
class FlatIndex:
    """Read-only array snapshot of a tree: levels root first, then the items in DFS order."""

    levels: list[FlatLevel]
    x0: FloatArray
    y0: FloatArray
    x1: FloatArray
    y1: FloatArray
    items: npt.NDArray[np.object_]
    item_list: list[Any]


def _split_by_owner(
    owner: IntArray, idx: IntArray, n_owners: int, items: npt.NDArray[np.object_]
) -> list[list[Any]]:
    """Group item indices per owner (query) into lists of item objects, sorted by owner."""
    order = np.argsort(owner, kind="stable")
    flat = items[idx[order]].tolist()
    bounds = np.zeros(n_owners + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=n_owners), out=bounds[1:])
    b = bounds.tolist()
    return [flat[b[i] : b[i + 1]] for i in range(n_owners)]


def search_many(
    flat: FlatIndex, qx0: FloatArray, qy0: FloatArray, qx1: FloatArray, qy1: FloatArray
) -> list[list[Any]]:
    """Return, per query box, the items intersecting it (order unspecified)."""
    n_q = len(qx0)
    q = np.arange(n_q, dtype=np.int64)
    node = np.zeros(n_q, dtype=np.int64)
    range_q: list[IntArray] = []
    range_s: list[IntArray] = []
    range_e: list[IntArray] = []
    for level in flat.levels:
        bx0, by0, bx1, by1 = level.x0[node], level.y0[node], level.x1[node], level.y1[node]
        ax0, ay0, ax1, ay1 = qx0[q], qy0[q], qx1[q], qy1[q]
        hit = (bx0 <= ax1) & (by0 <= ay1) & (bx1 >= ax0) & (by1 >= ay0)
        inside = hit & (bx0 >= ax0) & (by0 >= ay0) & (bx1 <= ax1) & (by1 <= ay1)
        # A node wholly inside the query contributes its contiguous item range at once.
        inner = node[inside]
        range_q.append(q[inside])
        range_s.append(level.item_start[inner])
        range_e.append(level.item_start[inner + 1])
        part = hit & ~inside
        partial = node[part]
        q, node = _expand_ranges(
            q[part], level.child_start[partial], level.child_start[partial + 1]
        )
    hit = (flat.x0[node] <= qx1[q]) & (flat.y0[node] <= qy1[q])
    hit &= (flat.x1[node] >= qx0[q]) & (flat.y1[node] >= qy0[q])
    out = _split_by_owner(q[hit], node[hit], n_q, flat.items)
    # Whole ranges are appended as list slices (a C-level copy) rather than expanded into
    # per-item index arrays, which for large result sets cost several times the output size.
    rq, rs, re = np.concatenate(range_q), np.concatenate(range_s), np.concatenate(range_e)
    listed = flat.item_list
    for owner, s, e in zip(rq.tolist(), rs.tolist(), re.tolist(), strict=True):
        out[owner] += listed[s:e]
    return out


def _box_sq_dist(
    px: FloatArray, py: FloatArray, x0: FloatArray, y0: FloatArray, x1: FloatArray, y1: FloatArray
) -> FloatArray:
    """Squared distance from points to boxes, bit-identical to the scalar formula in rtree.py."""
    dx = np.maximum(np.maximum(x0 - px, px - x1), 0.0)
    dy = np.maximum(np.maximum(y0 - py, py - y1), 0.0)
    result: FloatArray = dx * dx + dy * dy
    return result


def knn_many(
    flat: FlatIndex, px: FloatArray, py: FloatArray, k: int, limit: float
) -> list[list[Any]]:
    """Return, per point, its k nearest items with squared distance <= limit, ties in DFS order.

    Level-synchronous branch and bound: at each level the nodes reached by a query give an
    upper bound on its k-th distance (the farthest-corner distance of the nearest such node
    holding at least k items); nodes whose box is farther than it are dropped.
    """
    n_q = len(px)
    q = np.arange(n_q, dtype=np.int64)
    node = np.zeros(n_q, dtype=np.int64)
    bound = np.full(n_q, limit)
    for level in flat.levels:
        bx0, by0, bx1, by1 = level.x0[node], level.y0[node], level.x1[node], level.y1[node]
        qx, qy = px[q], py[q]
        near = _box_sq_dist(qx, qy, bx0, by0, bx1, by1)
        fx = np.maximum(np.abs(qx - bx0), np.abs(qx - bx1))
        fy = np.maximum(np.abs(qy - by0), np.abs(qy - by1))
        far = fx * fx + fy * fy
        count = level.item_start[node + 1] - level.item_start[node]
        # Pairs stay grouped by query (expansion preserves order), so per-query minima are a
        # reduceat: the nearest farthest-corner among nodes holding at least k items.
        starts = np.flatnonzero(np.concatenate(([True], q[1:] != q[:-1])))
        if len(q):
            best = np.minimum.reduceat(np.where(count >= k, far, np.inf), starts)
            owners = q[starts]
            bound[owners] = np.minimum(bound[owners], best)
        keep = near <= bound[q]
        kept = node[keep]
        q, node = _expand_ranges(q[keep], level.child_start[kept], level.child_start[kept + 1])
    dist = _box_sq_dist(px[q], py[q], flat.x0[node], flat.y0[node], flat.x1[node], flat.y1[node])
    keep = dist <= bound[q]
    q, node, dist = q[keep], node[keep], dist[keep]
    order = np.lexsort((node, dist, q))
    q, node = q[order], node[order]
    rank = np.arange(len(q), dtype=np.int64) - np.searchsorted(q, q, side="left")
    top = rank < k
    return _split_by_owner(q[top], node[top], n_q, flat.items)
