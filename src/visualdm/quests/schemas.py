"""Pydantic schemas of the quest API and services: quests, their parts, and assignments."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from visualdm.storable import NUL_FREE, JsonArray, RowId

Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=NUL_FREE)
]
Text = Annotated[str, StringConstraints(max_length=10_000, pattern=NUL_FREE)]
ObjectiveId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50, pattern=NUL_FREE)
]
Level = Annotated[int, Field(ge=1, le=30)]
FactionId = RowId
# Standing lives in -100..100, so one reward can swing it at most from one end to the other.
StandingDelta = Annotated[int, Field(ge=-200, le=200)]
QuestStatus = Literal["draft", "available", "active", "completed", "failed"]
AssignmentStatus = Literal["assigned", "in_progress", "completed", "failed", "abandoned"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Objective(_Strict):
    """One thing to do, `target` times (kill 5 wolves: target 5)."""

    id: ObjectiveId
    description: Text = ""
    target: int = Field(default=1, ge=1, le=1_000_000)


class Requirements(_Strict):
    """What a character needs to take the quest: a level, and membership of every faction."""

    min_level: Level | None = None
    factions: list[FactionId] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _factions_once(self) -> Requirements:
        if len(set(self.factions)) != len(self.factions):
            raise ValueError("a required faction is listed twice")
        return self


class StandingReward(_Strict):
    """A change of standing with a faction on completion."""

    faction_id: FactionId
    delta: StandingDelta


class Rewards(_Strict):
    """What completing the quest grants the character."""

    xp: int = Field(default=0, ge=0, le=10_000_000)
    gold: int = Field(default=0, ge=0, le=10_000_000)
    items: JsonArray = Field(default_factory=list, max_length=100)
    faction_standing: list[StandingReward] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _factions_once(self) -> Rewards:
        ids = [s.faction_id for s in self.faction_standing]
        if len(set(ids)) != len(ids):
            raise ValueError("a faction appears twice in the standing rewards")
        return self


def _unique_objectives(objectives: list[Objective] | None) -> None:
    if objectives is not None and len({o.id for o in objectives}) != len(objectives):
        raise ValueError("objective ids must be unique")


class QuestCreate(_Strict):
    """A new quest; drafts are hidden from players until made available."""

    title: Title
    description: Text = ""
    status: QuestStatus = "draft"
    objectives: list[Objective] = Field(default_factory=list, max_length=100)
    requirements: Requirements = Field(default_factory=Requirements)
    rewards: Rewards = Field(default_factory=Rewards)
    max_assignees: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _check(self) -> QuestCreate:
        _unique_objectives(self.objectives)
        return self


class QuestUpdate(_Strict):
    """A partial update: only the fields given change; `max_assignees: null` lifts the limit."""

    title: Title | None = None
    description: Text | None = None
    status: QuestStatus | None = None
    objectives: list[Objective] | None = Field(default=None, max_length=100)
    requirements: Requirements | None = None
    rewards: Rewards | None = None
    max_assignees: int | None = Field(default=None, ge=1, le=100_000)

    @model_validator(mode="after")
    def _check(self) -> QuestUpdate:
        _unique_objectives(self.objectives)
        return self


class QuestRead(BaseModel):
    """A quest as clients see it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    description: str
    status: QuestStatus
    objectives: list[Objective]
    requirements: Requirements
    rewards: Rewards
    max_assignees: int | None
    completed_at: datetime | None
    last_active_at: datetime
    created_at: datetime
    updated_at: datetime
    version: int


class QuestFilter(_Strict):
    """List filters; all optional and combined with AND."""

    status: QuestStatus | None = None
    title_contains: str | None = Field(default=None, max_length=200)


class QuestPage(BaseModel):
    """One page of quests."""

    items: list[QuestRead]
    next_cursor: str | None


class AssignmentRead(BaseModel):
    """A quest taken by a character: its status and progress per objective id."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    quest_id: int
    character_id: int
    status: AssignmentStatus
    progress: dict[str, int]
    assigned_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    version: int
