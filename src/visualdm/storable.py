"""Input bounds every schema shares: what both databases can store and the audit chain can hash.

PostgreSQL text and JSONB cannot hold NUL, JSONB cannot hold infinities, INTEGER and BIGINT
columns overflow, and a datetime far enough back has no UTC form. Refused here, at the schema,
such input is a 422 naming the field, instead of a driver error in the middle of a write.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field

from visualdm.ownership import JSON_MAX_DEPTH, JSON_MAX_INTEGER

NUL_FREE = r"^[^\x00]*$"
"""The pattern of text a database can store: anything but NUL."""

INT32_MAX = 2**31 - 1
"""The largest value of an INTEGER column."""

BIGINT_MAX = 2**63 - 1
"""The largest value of a BIGINT column, so the largest id."""

T = TypeVar("T")

RowId = Annotated[int, Field(ge=1, le=BIGINT_MAX)]
"""An id naming a row: a positive 63-bit integer."""


def _check_json(value: Any, depth: int) -> None:
    if isinstance(value, dict | list):
        if depth > JSON_MAX_DEPTH:
            raise ValueError(f"JSON nested deeper than {JSON_MAX_DEPTH} levels")
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, item in items:
            if isinstance(key, str):
                _check_text(key)
            _check_json(item, depth + 1)
    elif isinstance(value, str):
        _check_text(value)
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if abs(value) > JSON_MAX_INTEGER:
            raise ValueError(f"JSON integers must lie within ±{JSON_MAX_INTEGER}")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("JSON numbers must be finite")
    else:
        raise ValueError(f"not a JSON value: {type(value).__name__}")


def encodable(value: str) -> bool:
    """Whether `value` has a UTF-8 form: JSON's escapes can make lone surrogates ("\\ud800")."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _check_text(value: str) -> None:
    if "\x00" in value:
        raise ValueError("text cannot contain NUL (\\u0000)")
    if not encodable(value):
        raise ValueError("text must be valid Unicode (no lone surrogates)")


def bounded_json(value: T) -> T:
    """`value` if it is a JSON document the databases store and hash alike; else ValueError."""
    _check_json(value, 1)
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(bounded_json)]
"""A client-written JSON object: bounded depth, I-JSON integers, finite numbers, no NUL."""

JsonArray = Annotated[list[Any], AfterValidator(bounded_json)]
"""A client-written JSON array, bounded like JsonObject."""


def storable_text(value: str) -> str:
    """`value` with each NUL replaced by U+FFFD, for recording text that was refused."""
    return value.replace("\x00", "\ufffd")


def _has_utc_form(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("a timezone is required (e.g. Z or +00:00)")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range once converted to UTC") from None


UtcTime = Annotated[datetime, AfterValidator(_has_utc_form)]
"""A client-given instant with a timezone and a UTC form (0001-01-01T00:00+14:00 has none)."""
