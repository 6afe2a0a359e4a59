"""record() an audited operation in the current unit of work; verify() the hash chain."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from visualdm.access.principals import Actor, SystemActor, UserActor
from visualdm.audit.chain import GENESIS, link_hash, seal_personal
from visualdm.audit.models import AuditChainHead, AuditEntry, PendingAudit
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.ownership import REDACTED_FIELDS, SENSITIVE_READS, Module, Resource

REDACTED = "[redacted]"


def _plain(value: Any) -> Any:
    """Turn datetimes, enums and other values into the JSON the log stores (and hashes)."""
    return orjson.loads(orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS))


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
    """Queue an audit entry; it is appended to the chain in the same transaction, before commit."""
    if not uow.pending_audit:
        uow.before_commit(_append_pending)
    uow.pending_audit.append(
        PendingAudit(
            occurred_at=uow.clock.now(),
            actor_user_id=actor.user_id if isinstance(actor, UserActor) else None,
            actor_system=actor.name if isinstance(actor, SystemActor) else None,
            module=uow.module.value if uow.module else None,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            changes=_plain(dict(changes or {})),
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


def _link(prev: str, seq: int, entry: PendingAudit | AuditEntry, digest: str | None) -> str:
    """The chain hash of `entry` at position `seq` after `prev` (one rule to write and verify)."""
    return link_hash(
        prev,
        seq=seq,
        occurred_at=entry.occurred_at,
        actor_user_id=entry.actor_user_id,
        actor_system=entry.actor_system,
        module=entry.module,
        action=entry.action,
        entity=entry.entity,
        entity_id=entry.entity_id,
        changes=entry.changes,
        personal_digest=digest,
    )


async def _lock_head(session: AsyncSession) -> AuditChainHead:
    head = await session.scalar(
        select(AuditChainHead).where(AuditChainHead.id == 1).with_for_update()
    )
    if head is None:
        head = AuditChainHead(id=1, last_seq=0, last_hash=GENESIS)
        session.add(head)
    return head


async def _append_pending(uow: UnitOfWork) -> None:
    """Append every queued entry under the last recording module's role (INSERT-only)."""
    pending, uow.pending_audit = uow.pending_audit, []
    if not pending:
        return
    module = next((Module(p.module) for p in reversed(pending) if p.module), None)
    if module is None:
        await _append(uow, pending)
        return
    async with uow.acting_as(module):
        await _append(uow, pending)


async def _append(uow: UnitOfWork, pending: list[PendingAudit]) -> None:
    """Append `pending` to the chain under the head's row lock."""
    head = await _lock_head(uow.session)
    seq, prev = head.last_seq, head.last_hash
    for item in pending:
        seq += 1
        sealed, digest = seal_personal(item.personal)
        entry_hash = _link(prev, seq, item, digest)
        uow.session.add(
            AuditEntry(
                seq=seq,
                occurred_at=item.occurred_at,
                actor_user_id=item.actor_user_id,
                actor_system=item.actor_system,
                module=item.module,
                action=item.action,
                entity=item.entity,
                entity_id=item.entity_id,
                changes=item.changes,
                personal=sealed,
                personal_digest=digest,
                prev_hash=prev,
                hash=entry_hash,
            )
        )
        prev = entry_hash
    head.last_seq, head.last_hash = seq, prev


@dataclass(frozen=True)
class ChainReport:
    """The outcome of verify(): how many links were checked and the first broken one, if any."""

    checked: int
    broken_seq: int | None = None
    reason: str | None = None

    @property
    def ok(self) -> bool:
        """Whether every link verified."""
        return self.broken_seq is None


async def verify(session: AsyncSession, *, batch: int = 5000) -> ChainReport:
    """Recompute the chain in order; report the first altered, missing or reordered entry."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.seq >= expected_seq)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            if row.seq != expected_seq:
                return ChainReport(checked, expected_seq, f"entry {expected_seq} is missing")
            if row.prev_hash != expected_prev:
                return ChainReport(checked, row.seq, "link to the previous entry is broken")
            recomputed = _link(row.prev_hash, row.seq, row, row.personal_digest)
            if recomputed != row.hash:
                return ChainReport(checked, row.seq, "entry was altered after it was written")
            expected_prev, expected_seq = row.hash, row.seq + 1
            checked += 1
    head = await session.get(AuditChainHead, 1)
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != expected_prev):
        return ChainReport(checked, expected_seq, "entries after the last one found were removed")
    return ChainReport(checked)
