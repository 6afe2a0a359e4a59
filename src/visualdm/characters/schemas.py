"""Pydantic schemas of the character API and services."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from visualdm.ownership import INVENTORY_MAX
from visualdm.storable import INT32_MAX, NUL_FREE, JsonArray, JsonObject, RowId, UtcTime

Name = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=NUL_FREE)
]
Label = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50, pattern=NUL_FREE)]
Race = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=NUL_FREE)
]
Gold = Annotated[int, Field(ge=0, le=INT32_MAX)]
Score = Annotated[int, Field(ge=1, le=30)]
Level = Annotated[int, Field(ge=1, le=30)]
Coordinate = Annotated[float, Field(allow_inf_nan=False)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CharacterCreate(_Strict):
    """A new character; `owner_id` defaults to the calling player."""

    owner_id: RowId | None = None
    name: Name
    race: Race
    background: Label = ""
    character_class: Label = ""
    level: Level = 1
    strength: Score = 10
    dexterity: Score = 10
    constitution: Score = 10
    intelligence: Score = 10
    wisdom: Score = 10
    charisma: Score = 10
    max_hp: int = Field(default=10, ge=1, le=10_000)
    hp: int | None = Field(default=None, ge=0, le=10_000)
    armor_class: int = Field(default=10, ge=0, le=100)
    speed: int = Field(default=30, ge=0, le=1_000)
    gold: Gold = 0
    inventory: JsonArray = Field(default_factory=list, max_length=INVENTORY_MAX)
    derived: JsonObject = Field(default_factory=dict)

    @model_validator(mode="after")
    def _hp_within_max(self) -> CharacterCreate:
        if self.hp is not None and self.hp > self.max_hp:
            raise ValueError("hp cannot exceed max_hp")
        return self


class CharacterUpdate(_Strict):
    """A partial update: only the fields given change."""

    name: Name | None = None
    race: Label | None = None
    background: Label | None = None
    character_class: Label | None = None
    level: Level | None = None
    strength: Score | None = None
    dexterity: Score | None = None
    constitution: Score | None = None
    intelligence: Score | None = None
    wisdom: Score | None = None
    charisma: Score | None = None
    max_hp: int | None = Field(default=None, ge=1, le=10_000)
    hp: int | None = Field(default=None, ge=0, le=10_000)
    armor_class: int | None = Field(default=None, ge=0, le=100)
    speed: int | None = Field(default=None, ge=0, le=1_000)
    gold: Gold | None = None
    inventory: JsonArray | None = Field(default=None, max_length=INVENTORY_MAX)
    derived: JsonObject | None = None


class Position(BaseModel):
    """Where a character stands, and when that was last set (for last-writer-wins)."""

    x: float
    y: float
    updated_at: datetime


class PositionUpdate(_Strict):
    """A position report from a client or the simulation, stamped with when it was observed."""

    x: Coordinate
    y: Coordinate
    at: UtcTime | None = None


class PositionResult(BaseModel):
    """The outcome of a position update: applied, or ignored because a newer one is stored."""

    applied: bool
    reason: str | None = None
    position: Position | None


class CharacterRead(BaseModel):
    """A character as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    owner_id: int | None
    name: str
    race: str
    background: str
    character_class: str
    level: int
    xp: int
    gold: int
    strength: int
    dexterity: int
    constitution: int
    intelligence: int
    wisdom: int
    charisma: int
    max_hp: int
    hp: int
    armor_class: int
    speed: int
    inventory: list[Any]
    derived: dict[str, Any]
    position: Position | None
    last_active_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int


class CharacterFilter(_Strict):
    """List filters; all optional and combined with AND."""

    owner_id: RowId | None = None
    race: str | None = Field(default=None, max_length=50, pattern=NUL_FREE)
    name_contains: str | None = Field(default=None, max_length=100, pattern=NUL_FREE)
    min_level: int | None = Field(default=None, ge=1, le=30)
    max_level: int | None = Field(default=None, ge=1, le=30)


class CharacterPage(BaseModel):
    """One page of characters."""

    items: list[CharacterRead]
    next_cursor: str | None
