"""Hashing of audit entries: what each link covers and how personal data is kept apart."""

from __future__ import annotations

import hashlib
import json
import secrets
from datetime import date, datetime
from enum import Enum
from typing import Any

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


def link_hash(
    prev_hash: str,
    *,
    seq: int,
    occurred_at: datetime,
    actor_user_id: int | None,
    actor_system: str | None,
    module: str | None,
    action: str,
    entity: str,
    entity_id: str | None,
    changes: dict[str, Any],
    personal_digest: str | None,
) -> str:
    """Return the hash of one link: the previous hash plus every non-personal field."""
    body = canonical(
        {
            "seq": seq,
            "at": occurred_at.isoformat(),
            "user": actor_user_id,
            "system": actor_system,
            "module": module,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "changes": changes,
            "personal": personal_digest,
        }
    )
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def stored_link_hash(
    prev_hash: str,
    *,
    chain_seq: int,
    occurred_at: datetime,
    actor_user_id: int | None,
    actor_system: str | None,
    module: str | None,
    action: str,
    entity: str,
    entity_id: str | None,
    changes_text: str,
    personal_digest: str | None,
) -> str:
    """Return the hash of one link whose changes are covered as the exact text stored."""
    body = canonical(
        {
            "seq": chain_seq,
            "at": occurred_at.isoformat(),
            "user": actor_user_id,
            "system": actor_system,
            "module": module,
            "action": action,
            "entity": entity,
            "entity_id": entity_id,
            "changes_sha256": hashlib.sha256(changes_text.encode()).hexdigest(),
            "personal": personal_digest,
        }
    )
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()
