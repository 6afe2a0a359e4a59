"""Text matching shared by list filters."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement


def ilike_contains(column: Any, needle: str) -> ColumnElement[bool]:
    """Case-insensitive "contains `needle`", with LIKE's wildcards and escape taken literally."""
    escaped = needle.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
    return column.ilike(f"%{escaped}%", escape="\\")  # type: ignore[no-any-return]
