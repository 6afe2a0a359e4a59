"""Entities as columns (numpy arrays): the bulk form that rebuilds and snapshots load from.

Checked one by one, a million entities cost seconds; as columns they are checked with a few
array operations, stored as raw arrays, and turned into `Placed` objects and R-tree items in
one pass (ADR 0009).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import repeat
from typing import Any

import numpy as np
import numpy.typing as npt

from visualdm.errors import RuleViolation
from visualdm.spatial.index import Bounds, Placed, check_placed

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Row = tuple[str, str, float, float, float, float, bool, datetime]
"""One entity as (key, kind, x, y, width, height, is_solid, at)."""


def _micros(at: datetime) -> int:
    return (at - _EPOCH) // _MICROSECOND


@dataclass(frozen=True, eq=False)
class Columns:
    """N entities: keys, kinds (as indexes into `kinds`), geometry, solidity and timestamps."""

    keys: list[str]
    kinds: list[str]
    kind_of: npt.NDArray[np.int32]
    geometry: npt.NDArray[np.float64]  # (N, 4): centre x, centre y, width, height
    is_solid: npt.NDArray[np.bool_]
    at_us: npt.NDArray[np.int64]  # microseconds since the Unix epoch (UTC)

    def __len__(self) -> int:
        return len(self.keys)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Columns):
            return NotImplemented
        return self.placed() == other.placed()

    @classmethod
    def of_rows(cls, rows: Iterable[Row]) -> Columns:
        """Columns of (key, kind, x, y, width, height, is_solid, at) rows, in their order."""
        listed = list(rows)
        if not listed:
            return cls.of_lists([], [], [], [], [], [], [], [])
        keys, kinds, xs, ys, ws, hs, solid, ats = zip(*listed, strict=True)
        return cls.of_lists(keys, kinds, xs, ys, ws, hs, solid, ats)

    @classmethod
    def of_lists(
        cls,
        keys: Sequence[str],
        kinds: Sequence[str],
        xs: Sequence[float],
        ys: Sequence[float],
        widths: Sequence[float],
        heights: Sequence[float],
        is_solid: Sequence[bool],
        ats: Sequence[datetime],
    ) -> Columns:
        """Columns of one sequence per field, all of the same length.

        Raises RuleViolation for a timestamp without a time zone.
        """
        table = {kind: n for n, kind in enumerate(dict.fromkeys(kinds))}
        micros: dict[datetime, int] = {}
        for at in set(ats):  # rows loaded together mostly share a few timestamps
            if at.tzinfo is None:
                raise RuleViolation("position timestamps must carry a time zone")
            micros[at] = _micros(at)
        geometry = np.empty((len(keys), 4), dtype=np.float64)
        for column, values in enumerate((xs, ys, widths, heights)):
            geometry[:, column] = np.fromiter(values, dtype=np.float64, count=len(keys))
        return cls(
            keys=list(keys),
            kinds=list(table),
            kind_of=np.fromiter((table[k] for k in kinds), dtype=np.int32, count=len(keys)),
            geometry=geometry,
            is_solid=np.fromiter(is_solid, dtype=np.bool_, count=len(keys)),
            at_us=np.fromiter((micros[at] for at in ats), dtype=np.int64, count=len(keys)),
        )

    @classmethod
    def of_placed(cls, entities: Sequence[Placed]) -> Columns:
        """Columns of `entities`, in their order."""
        return cls.of_rows(
            (e.key, e.kind, e.x, e.y, e.width, e.height, e.is_solid, e.at) for e in entities
        )

    def boxes(self) -> npt.NDArray[np.float64]:
        """Footprints as an (N, 4) array of (min_x, min_y, max_x, max_y), as `Placed.box`."""
        g = self.geometry
        hw, hh = g[:, 2] / 2, g[:, 3] / 2
        return np.column_stack((g[:, 0] - hw, g[:, 1] - hh, g[:, 0] + hw, g[:, 1] + hh))

    def refused(self, bounds: Bounds) -> npt.NDArray[np.bool_]:
        """Which rows `check_placed` would refuse (not finite, not positive, outside, no kind)."""
        with np.errstate(invalid="ignore", over="ignore"):
            g, b = self.geometry, self.boxes()
            bad = ~np.isfinite(g).all(axis=1) | ~np.isfinite(b).all(axis=1)
            bad |= (g[:, 2] <= 0) | (g[:, 3] <= 0)
            bad |= (b[:, 0] < bounds.min_x) | (b[:, 1] < bounds.min_y)
            bad |= (b[:, 2] > bounds.max_x) | (b[:, 3] > bounds.max_y)
        empty = [i for i, kind in enumerate(self.kinds) if not kind]
        if empty:
            bad |= np.isin(self.kind_of, empty)
        return np.asarray(bad, dtype=np.bool_)

    def check(self, bounds: Bounds) -> None:
        """Raise RuleViolation, as `check_placed` would, for the first row the index refuses."""
        bad = np.flatnonzero(self.refused(bounds))
        if len(bad):
            check_placed(bounds, self.row(int(bad[0])))
            raise AssertionError("columns and check_placed disagree")  # pragma: no cover

    def take(self, rows: npt.NDArray[Any]) -> Columns:
        """The rows selected by a boolean mask or an index array."""
        index = np.flatnonzero(rows) if rows.dtype == np.bool_ else rows
        return Columns(
            keys=[self.keys[i] for i in index.tolist()],
            kinds=self.kinds,
            kind_of=self.kind_of[index],
            geometry=self.geometry[index],
            is_solid=self.is_solid[index],
            at_us=self.at_us[index],
        )

    def row(self, i: int) -> Placed:
        """Row `i` as a Placed."""
        x, y, w, h = self.geometry[i].tolist()
        at = _EPOCH + int(self.at_us[i]) * _MICROSECOND
        kind = self.kinds[int(self.kind_of[i])]
        return Placed(self.keys[i], kind, x, y, w, h, bool(self.is_solid[i]), at)

    def placed(self) -> list[Placed]:
        """Every row as a Placed, in order; equal timestamps share one datetime object."""
        distinct, inverse = np.unique(self.at_us, return_inverse=True)
        stamps = [_EPOCH + us * _MICROSECOND for us in distinct.tolist()]
        g = self.geometry
        rows = zip(
            self.keys,
            [self.kinds[i] for i in self.kind_of.tolist()],
            g[:, 0].tolist(),
            g[:, 1].tolist(),
            g[:, 2].tolist(),
            g[:, 3].tolist(),
            self.is_solid.tolist(),
            [stamps[i] for i in inverse.reshape(-1).tolist()],
            strict=True,
        )
        # tuple.__new__ straight from C: Placed._make is the same call behind a Python frame.
        made: list[Placed] = list(map(tuple.__new__, repeat(Placed), rows))
        return made
