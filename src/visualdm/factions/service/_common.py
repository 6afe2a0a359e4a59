"""Names every faction service shares: entity labels, acting modules, cache tags, the read view."""

from __future__ import annotations

from visualdm.factions.models import Faction
from visualdm.factions.schemas import FactionRead
from visualdm.ownership import Module

ENTITY = "faction"
RELATION = "faction_relation"
MEMBERSHIP = "faction_membership"
CREATION = Module.WORLD_GENERATION
MANAGEMENT = Module.FACTION_MANAGEMENT
ASSOCIATE = "associate"


def tags_of(faction_id: int) -> list[str]:
    """Cache tags a change to this faction invalidates (spec 5.4: it and its member list)."""
    return [f"faction:{faction_id}", members_tag(faction_id)]


def members_tag(faction_id: int) -> str:
    """The cache tag of a faction's member list."""
    return f"faction:{faction_id}:members"


def to_read(row: Faction) -> FactionRead:
    """Return the API view of a row."""
    return FactionRead.model_validate(row)
