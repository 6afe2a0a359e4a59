"""Hashing of audit entries: what each link covers and how personal data is kept apart."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date, datetime
from enum import Enum
from typing import Any, Protocol

import orjson

GENESIS = "0" * 64


def canonical(value: Any) -> bytes:
    """Serialize `value` deterministically (sorted keys) for hashing."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def _plain_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    return str(value)


def stored_text(value: Any) -> str:
    """The JSON text an audit entry stores for `value`; its hash covers these exact bytes.

    orjson for speed; the standard library when orjson refuses a value (integers beyond 64
    bits), so whatever a client could put in a field is recorded rather than failing the write.
    """
    try:
        return orjson.dumps(
            value, default=_plain_default, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
        ).decode()
    except (orjson.JSONEncodeError, RecursionError):
        return json.dumps(
            value,
            default=_plain_default,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )


def seal_personal(personal: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """Salt personal fields and return them with their digest; erasing them keeps the digest valid.

    The random salt lives inside the personal fields, so once they are erased the digest can no
    longer be used to guess them (an IP address has too few values to hide behind a bare hash).
    """
    if not personal:
        return None, None
    salted = {**personal, "_salt": secrets.token_hex(16)}
    return salted, hashlib.sha256(canonical(salted)).hexdigest()


class Linked(Protocol):
    """The fields of an audit entry that its link covers (an ORM entry or a Core row)."""

    @property
    def occurred_at(self) -> datetime: ...
    @property
    def actor_user_id(self) -> int | None: ...
    @property
    def actor_system(self) -> str | None: ...
    @property
    def module(self) -> str | None: ...
    @property
    def action(self) -> str: ...
    @property
    def entity(self) -> str: ...
    @property
    def entity_id(self) -> str | None: ...
    @property
    def personal_digest(self) -> str | None: ...


def _link(prev_hash: str, seq: int, entry: Linked, changes: Any) -> str:
    body = canonical(
        {
            "seq": seq,
            "at": entry.occurred_at.isoformat(),
            "user": entry.actor_user_id,
            "system": entry.actor_system,
            "module": entry.module,
            "action": entry.action,
            "entity": entry.entity,
            "entity_id": entry.entity_id,
            **changes,
            "personal": entry.personal_digest,
        }
    )
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def parsed_link_hash(prev_hash: str, seq: int, entry: Linked, changes: Any) -> str:
    """The hash of a link of the first form: the previous hash, every non-personal field and
    the changes as parsed JSON (what storage may rewrite: entries sealed before 0003)."""
    return _link(prev_hash, seq, entry, {"changes": changes})


def stored_link_hash(prev_hash: str, seq: int, entry: Linked, changes_text: str) -> str:
    """The hash of a link whose changes are covered as the exact text stored."""
    digest = hashlib.sha256(changes_text.encode()).hexdigest()
    return _link(prev_hash, seq, entry, {"changes_sha256": digest})
