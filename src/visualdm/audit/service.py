"""record() an audited operation in the current unit of work (inserted unsealed at commit).

Chaining the entries is the sealer's job (audit/sealer.py), off the write's path.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Table

from visualdm.access.principals import Actor, SystemActor, UserActor
from visualdm.audit.chain import seal_personal, stored_text
from visualdm.audit.models import AuditEntry, PendingAudit
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.ownership import REDACTED_FIELDS, SENSITIVE_READS, Resource

REDACTED = "[redacted]"
_LOG: Table = AuditEntry.__table__  # type: ignore[assignment]


def _plain(value: Any) -> Any:
    """Turn datetimes, enums and other values into the JSON the log stores."""
    return json.loads(stored_text(value))


def redact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Replace the values of secret fields (passwords, tokens) with a marker."""
    return {k: (REDACTED if k in REDACTED_FIELDS else v) for k, v in values.items()}


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return {field: {"old": ..., "new": ...}} for the fields whose value changed, redacted."""
    changed: dict[str, dict[str, Any]] = {}
    for key, value in new.items():
        before = old.get(key)
        if before != value:
            if key in REDACTED_FIELDS:
                changed[key] = {"old": REDACTED, "new": REDACTED}
            else:
                changed[key] = {"old": before, "new": value}
    return changed


def record(
    uow: UnitOfWork,
    *,
    actor: Actor,
    action: str,
    entity: str,
    entity_id: object,
    changes: Mapping[str, Any] | None = None,
    personal: Mapping[str, Any] | None = None,
) -> None:
    """Queue an audit entry; it is inserted in the same transaction, just before commit."""
    if not uow.pending_audit:
        uow.before_commit(_insert_pending)
    uow.pending_audit.append(
        PendingAudit(
            occurred_at=uow.clock.now(),
            actor_user_id=actor.user_id if isinstance(actor, UserActor) else None,
            actor_system=actor.name if isinstance(actor, SystemActor) else None,
            module=uow.module.value if uow.module else None,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            changes_text=stored_text(dict(changes or {})),
            personal=_plain(dict(personal)) if personal else None,
        )
    )


def record_sensitive_read(
    uow: UnitOfWork,
    *,
    actor: Actor,
    resource: Resource,
    action: str,
    entity: str,
    entity_id: int,
    subject_user_id: int,
) -> None:
    """Audit a read of a resource the registry marks sensitive, unless the reader is its subject."""
    if resource not in SENSITIVE_READS:
        return
    if isinstance(actor, UserActor) and actor.user_id == subject_user_id:
        return
    record(uow, actor=actor, action=action, entity=entity, entity_id=entity_id)


def record_created(
    uow: UnitOfWork, *, actor: Actor, entity: str, entity_id: object, values: Mapping[str, Any]
) -> None:
    """Record a creation: every field goes from nothing to its first value."""
    record(
        uow,
        actor=actor,
        action="create",
        entity=entity,
        entity_id=entity_id,
        changes={k: {"old": None, "new": v} for k, v in values.items()},
    )


async def _insert_pending(uow: UnitOfWork) -> None:
    """Queue every recorded entry for insertion (unsealed, without RETURNING) before commit.

    It runs under whatever role the transaction holds: every module role may insert here.
    """
    pending, uow.pending_audit = uow.pending_audit, []
    if not pending:
        return
    rows = []
    for item in pending:
        sealed, digest = seal_personal(item.personal)
        rows.append(
            {
                "occurred_at": item.occurred_at,
                "actor_user_id": item.actor_user_id,
                "actor_system": item.actor_system,
                "module": item.module,
                "action": item.action,
                "entity": item.entity,
                "entity_id": item.entity_id,
                "changes": item.changes_text,
                "personal": sealed,
                "personal_digest": digest,
            }
        )
    uow.append_rows(_LOG, rows)
