"""The append-only, hash-chained audit log (spec 6.3)."""
