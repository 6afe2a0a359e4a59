"""Faction services: CRUD and soft delete, the acyclic hierarchy, relations and membership.

Creation runs as the World Generation System, the rest as Faction Management (spec 2.2).
"""

from __future__ import annotations

from visualdm.factions import repository as repo
from visualdm.factions.service._common import (
    ASSOCIATE,
    CREATION,
    ENTITY,
    MANAGEMENT,
    MEMBERSHIP,
    RELATION,
    members_tag,
    tags_of,
    to_read,
)
from visualdm.factions.service._factions import (
    ancestors,
    children,
    create_faction,
    delete_faction,
    get_faction,
    list_factions,
    restore_faction,
    update_faction,
)
from visualdm.factions.service._membership import (
    adjust_standing,
    factions_joined,
    is_member,
    join_faction,
    leave_faction,
    list_members,
    memberships_of,
    memberships_of_characters,
)
from visualdm.factions.service._relations import get_relation, list_relations, set_relation

__all__ = [
    "ASSOCIATE",
    "CREATION",
    "ENTITY",
    "MANAGEMENT",
    "MEMBERSHIP",
    "RELATION",
    "adjust_standing",
    "ancestors",
    "children",
    "create_faction",
    "delete_faction",
    "factions_joined",
    "get_faction",
    "get_relation",
    "is_member",
    "join_faction",
    "leave_faction",
    "list_factions",
    "list_members",
    "list_relations",
    "members_tag",
    "memberships_of",
    "memberships_of_characters",
    "repo",
    "restore_faction",
    "set_relation",
    "tags_of",
    "to_read",
    "update_faction",
]
