"""Names every quest service shares: entity labels, acting modules, cache tags, read views."""

from __future__ import annotations

from visualdm.access.policy import user_may
from visualdm.access.principals import Actor, SystemActor, UserActor
from visualdm.ownership import Action, Module, Resource
from visualdm.quests.models import CharacterQuest, Quest
from visualdm.quests.schemas import AssignmentRead, QuestRead

ENTITY = "quest"
ASSIGNMENT = "quest_assignment"
GENERATION = Module.QUEST_GENERATION
MANAGEMENT = Module.QUEST_MANAGEMENT
QUEST_SYSTEM = SystemActor("quest_management")
"""Who the Quest System reads characters and factions as (system-level authorization, spec 3)."""


def tags_of(quest_id: int) -> list[str]:
    """Cache tags a change to this quest invalidates (spec 5.4: it and character quest lists)."""
    return [f"quest:{quest_id}", f"quest:{quest_id}:characters"]


def assignment_tags(quest_id: int, character_id: int) -> list[str]:
    """Cache tags a change to this assignment invalidates: both sides' lists."""
    return [f"quest:{quest_id}:characters", f"character:{character_id}:quests"]


def to_read(row: Quest) -> QuestRead:
    """Return the API view of a quest row."""
    return QuestRead.model_validate(row)


def assignment_read(row: CharacterQuest) -> AssignmentRead:
    """Return the API view of an assignment row."""
    return AssignmentRead.model_validate(row)


def sees_drafts(actor: Actor) -> bool:
    """Whether `actor` may see draft quests: system callers and users who may edit quests."""
    return not isinstance(actor, UserActor) or user_may(actor, Resource.QUEST, Action.UPDATE)
