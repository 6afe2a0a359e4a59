"""Characters: the Character System's data (attributes, stats, positions)."""
