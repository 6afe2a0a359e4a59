"""Radius invalidation (spec 5.4): cached query results keyed by the tiles their area touches.

A query's result is cached under its parameters and tagged `tile:{tx}:{ty}` for every tile of
SPATIAL_TILE_SIZE its area touches; a change drops exactly the tiles its old and new footprints
touch, so results for unrelated areas survive. Each process keeps its own cache next to its own
index (spec 2.4: in-memory), and drops tiles when its index applies a change, local or remote.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from visualdm.ownership import (
    SPATIAL_QUERY_CACHE_MAX_ENTRIES,
    SPATIAL_QUERY_CACHE_MAX_TILES,
    SPATIAL_TILE_SIZE,
)
from visualdm.spatial.index import Box, Placed

Tile = tuple[int, int]


def tiles_of(box: Box, size: float = SPATIAL_TILE_SIZE) -> list[Tile]:
    """Every tile `box` touches (edges included), row by row."""
    x0, y0 = math.floor(box[0] / size), math.floor(box[1] / size)
    x1, y1 = math.floor(box[2] / size), math.floor(box[3] / size)
    return [(tx, ty) for ty in range(y0, y1 + 1) for tx in range(x0, x1 + 1)]


def tile_count(box: Box, size: float = SPATIAL_TILE_SIZE) -> int:
    """How many tiles `box` touches, without listing them."""
    nx = math.floor(box[2] / size) - math.floor(box[0] / size) + 1
    ny = math.floor(box[3] / size) - math.floor(box[1] / size) + 1
    return nx * ny


def tag(tile: Tile) -> str:
    """The cache tag of a tile (the registry's `tile:{x}:{y}` trigger)."""
    return f"tile:{tile[0]}:{tile[1]}"


def change_tiles(before: Placed | None, after: Placed | None) -> list[Tile]:
    """The tiles a change touches: those of the old and of the new footprint."""
    tiles: dict[Tile, None] = {}
    for e in (before, after):
        if e is not None:
            tiles.update(dict.fromkeys(tiles_of(e.box)))
    return list(tiles)


class TileCache:
    """Bounded LRU of query results, each dropped when any tile of its area changes."""

    def __init__(self, max_entries: int = SPATIAL_QUERY_CACHE_MAX_ENTRIES) -> None:
        self._max = max_entries
        self._entries: OrderedDict[str, tuple[Any, list[Tile]]] = OrderedDict()
        self._by_tile: dict[Tile, set[str]] = {}
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def get_or_load(self, key: str, area: Box, load: Callable[[], Any]) -> Any:
        """Return the cached result of `key`, computing it with `load` on a miss."""
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]
        self.misses += 1
        value = load()
        if tile_count(area) <= SPATIAL_QUERY_CACHE_MAX_TILES:
            tiles = tiles_of(area)
            self._entries[key] = (value, tiles)
            for t in tiles:
                self._by_tile.setdefault(t, set()).add(key)
            while len(self._entries) > self._max:
                self._drop(next(iter(self._entries)))
        return value

    def invalidate(self, tiles: list[Tile]) -> int:
        """Drop every result whose area touches one of `tiles`; returns how many went."""
        doomed = set().union(*(self._by_tile.get(t, set()) for t in tiles)) if tiles else set()
        for key in doomed:
            self._drop(key)
        return len(doomed)

    def clear(self) -> None:
        """Drop everything (after a reload of the whole index)."""
        self._entries.clear()
        self._by_tile.clear()

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for t in entry[1]:
            keys = self._by_tile.get(t)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tile[t]
