"""Opaque keyset cursors for list endpoints: stable under inserts, no OFFSET scans."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Generic, TypeVar

import orjson

from visualdm.errors import RuleViolation
from visualdm.ownership import PAGE_SIZE_DEFAULT, PAGE_SIZE_MAX
from visualdm.storable import BIGINT_MAX

T = TypeVar("T")


def encode_cursor(last_id: int) -> str:
    """Return the opaque cursor that continues after `last_id`."""
    return base64.urlsafe_b64encode(orjson.dumps({"after": last_id})).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """Return the id a cursor continues after; RuleViolation if it is not one of ours."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        after = orjson.loads(raw)["after"]
    except (binascii.Error, ValueError, KeyError, TypeError) as exc:
        raise RuleViolation("invalid cursor", cursor=cursor) from exc
    # Past BIGINT an id cannot name a row, and the driver refuses to send it.
    if not isinstance(after, int) or isinstance(after, bool) or not 0 <= after <= BIGINT_MAX:
        raise RuleViolation("invalid cursor", cursor=cursor)
    return after


def page_size(limit: int | None) -> int:
    """Return the page size to use; RuleViolation outside 1..PAGE_SIZE_MAX."""
    if limit is None:
        return PAGE_SIZE_DEFAULT
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise RuleViolation(f"limit must be between 1 and {PAGE_SIZE_MAX}", limit=limit)
    return limit


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and the cursor of the next (None on the last page)."""

    items: list[T]
    next_cursor: str | None


def next_cursor(ids: list[int], more: bool) -> str | None:
    """The cursor after the last of `ids` when more rows follow, else None."""
    return encode_cursor(ids[-1]) if more and ids else None
