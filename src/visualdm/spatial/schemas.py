"""Pydantic views of the spatial world: entity input and output, move outcomes, query results."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from visualdm.spatial.index import Placed
from visualdm.storable import NUL_FREE, UtcTime

Kind = Annotated[str, Field(min_length=1, max_length=32, pattern=NUL_FREE)]
EntityName = Annotated[str, Field(max_length=100, pattern=NUL_FREE)]
QueryKind = Annotated[str, Field(max_length=32, pattern=NUL_FREE)]
"""A kind named in a query filter: text that could name stored data (no NUL)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class WorldEntityCreate(_Strict):
    """A building, static object or NPC that World Generation places; (x, y) is its centre."""

    kind: Kind
    name: EntityName = ""
    x: float
    y: float
    width: float
    height: float
    is_solid: bool = True
    at: UtcTime | None = None


class WorldEntityUpdate(_Strict):
    """A move or change of a world entity, stamped with when it was observed (LWW)."""

    x: float | None = None
    y: float | None = None
    width: float | None = None
    height: float | None = None
    kind: Kind | None = None
    name: EntityName | None = None
    is_solid: bool | None = None
    at: UtcTime | None = None


class EntityRead(BaseModel):
    """An entity as the index holds it: `key` is `entity:<id>` or `character:<id>`."""

    key: str
    kind: str
    x: float
    y: float
    width: float
    height: float
    is_solid: bool
    updated_at: datetime
    name: str | None = None
    distance: float | None = None

    @classmethod
    def of(
        cls, placed: Placed, *, name: str | None = None, distance: float | None = None
    ) -> EntityRead:
        """The view of an indexed entity."""
        return cls(  # model_construct is slower: it runs in Python, validation in Rust
            key=placed.key,
            kind=placed.kind,
            x=placed.x,
            y=placed.y,
            width=placed.width,
            height=placed.height,
            is_solid=placed.is_solid,
            updated_at=placed.at,
            name=name,
            distance=distance,
        )


class MoveResult(BaseModel):
    """What a change did: applied or ignored (why), and where a pushed entity ended up."""

    applied: bool
    reason: str | None = None
    entity: EntityRead
    requested: tuple[float, float] | None = None
    resolved: tuple[float, float] | None = None
    collided_with: list[str] = Field(default_factory=list)


class EntityList(BaseModel):
    """Entities a query found; `count` is the total, `truncated` says items were cut."""

    items: list[EntityRead]
    count: int
    truncated: bool = False


class PathHit(BaseModel):
    """An entity a segment crosses, and where along the segment (0..1) it enters it."""

    t: float
    entity: EntityRead


class PathResult(BaseModel):
    """The entities a segment crosses, in order; clear when no solid one blocks it."""

    hits: list[PathHit]
    line_of_sight: bool
    blocked_by: str | None = None


class RebuildReport(BaseModel):
    """What a rebuild from the database loaded, and what it had to leave out (and why)."""

    entities: int
    characters: int
    skipped: dict[str, str] = Field(default_factory=dict)


# --- query strings of the index reads (validated as FastAPI validates the documented routes) --

_Kinds = Field(default=None, max_length=20)


class WindowOrRadiusQuery(BaseModel):
    """`GET /v1/world/entities`: a window (`min_x..max_y`) or a circle (`x`, `y`, `r`)."""

    min_x: float | None = None
    min_y: float | None = None
    max_x: float | None = None
    max_y: float | None = None
    x: float | None = None
    y: float | None = None
    r: float | None = None
    kind: list[QueryKind] | None = _Kinds
    limit: int | None = Field(default=None, ge=1)


class NearestQuery(BaseModel):
    """`GET /v1/world/nearest`."""

    x: float
    y: float
    k: int = Field(default=1, ge=1)
    kind: list[QueryKind] | None = _Kinds
    max_distance: float | None = None


class PathQuery(BaseModel):
    """`GET /v1/world/path`."""

    x0: float
    y0: float
    x1: float
    y1: float
    ignore: list[QueryKind] | None = _Kinds
