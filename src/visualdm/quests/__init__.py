"""Quests: definitions and assignments (the Quest System's data)."""
