"""Factions: hierarchy, relations and membership (the Faction System's data)."""
