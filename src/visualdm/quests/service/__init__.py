"""Quest services: quest CRUD and status lifecycle, and assigning quests to characters.

Creation runs as Quest Generation, the rest as Quest Management (spec 2.3); players see no drafts.
"""

from __future__ import annotations

from visualdm.quests import repository as repo
from visualdm.quests.service._assignments import (
    ASSIGNABLE,
    OPEN,
    abandon,
    assign_quest,
    assignments_of_character,
    assignments_of_characters,
    assignments_of_quest,
    complete_assignment,
    fail_assignment,
    update_progress,
)
from visualdm.quests.service._common import (
    ASSIGNMENT,
    ENTITY,
    GENERATION,
    MANAGEMENT,
    QUEST_SYSTEM,
    assignment_read,
    assignment_tags,
    sees_drafts,
    tags_of,
    to_read,
)
from visualdm.quests.service._quests import (
    TRANSITIONS,
    create_quest,
    delete_quest,
    get_quest,
    list_quests,
    restore_quest,
    update_quest,
)

__all__ = [
    "ASSIGNABLE",
    "ASSIGNMENT",
    "ENTITY",
    "GENERATION",
    "MANAGEMENT",
    "OPEN",
    "QUEST_SYSTEM",
    "TRANSITIONS",
    "abandon",
    "assign_quest",
    "assignment_read",
    "assignment_tags",
    "assignments_of_character",
    "assignments_of_characters",
    "assignments_of_quest",
    "complete_assignment",
    "create_quest",
    "delete_quest",
    "fail_assignment",
    "get_quest",
    "list_quests",
    "repo",
    "restore_quest",
    "sees_drafts",
    "tags_of",
    "to_read",
    "update_progress",
    "update_quest",
]
