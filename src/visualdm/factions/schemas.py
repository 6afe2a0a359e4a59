"""Pydantic schemas of the faction API and services."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from visualdm.storable import NUL_FREE, RowId

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NUL_FREE)
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=10_000, pattern=NUL_FREE)
]
Rank = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=NUL_FREE)
]

SCORE_MIN, SCORE_MAX = -100, 100
"""Bounds of relation scores and member standing (the tables' CHECK constraints)."""


class Stance(StrEnum):
    """How one faction stands towards another, warmest first."""

    ALLIED = "allied"
    FRIENDLY = "friendly"
    NEUTRAL = "neutral"
    UNFRIENDLY = "unfriendly"
    HOSTILE = "hostile"
    WAR = "war"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FactionCreate(_Strict):
    """A new faction, optionally placed under a live parent."""

    name: Name
    description: Description = ""
    parent_id: RowId | None = None


class FactionUpdate(_Strict):
    """A partial update: only the fields given change; `parent_id=None` makes it a root."""

    name: Name | None = None
    description: Description | None = None
    parent_id: RowId | None = None


class FactionRead(BaseModel):
    """A faction as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str
    parent_id: int | None
    created_at: datetime
    updated_at: datetime
    version: int


class FactionFilter(_Strict):
    """List filters; all optional and combined with AND."""

    parent_id: RowId | None = None
    name_contains: str | None = Field(default=None, max_length=100, pattern=NUL_FREE)


class FactionPage(BaseModel):
    """One page of factions."""

    items: list[FactionRead]
    next_cursor: str | None


class RelationRead(BaseModel):
    """How `faction_id` and `other_id` stand; the same row read from either side."""

    faction_id: int
    other_id: int
    stance: Stance
    score: int
    updated_at: datetime


class MembershipRead(BaseModel):
    """A character's membership of a faction."""

    model_config = ConfigDict(from_attributes=True)

    character_id: int
    faction_id: int
    rank: str
    standing: int
    joined_at: datetime


class MembershipPage(BaseModel):
    """One page of a faction's members; may hold fewer than asked when members were deleted."""

    items: list[MembershipRead]
    next_cursor: str | None
