"""Sealing committed audit entries into the hash chain, and verifying the chain.

Writes insert their entries unsealed, without any shared lock. One sealer at a time across all
processes (a PostgreSQL advisory lock; SQLite has one writer anyway) takes the oldest committed
unsealed entries, gives them the next chain positions and links, and moves the head, in
batches and within the registry's bound. The chain order is the order of sealing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import Table, bindparam, func, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from visualdm.audit.chain import GENESIS, Linked, parsed_link_hash, stored_link_hash
from visualdm.audit.models import FORM_PARSED, AuditChainHead, AuditEntry
from visualdm.db.unit_of_work import OpenUow, UnitOfWork
from visualdm.ownership import AUDIT_SEAL_BATCH, AUDIT_SEAL_BOUND, AUDIT_SEAL_INTERVAL
from visualdm.periodic import repeat

log = structlog.get_logger(__name__)

SEAL_LOCK_KEY = 7425011
"""pg advisory lock key of the sealer (db/roles.py uses 7425001, maintenance 7425007)."""

_LOG: Table = AuditEntry.__table__  # type: ignore[assignment]
_HEAD: Table = AuditChainHead.__table__  # type: ignore[assignment]


def _link(prev: str, seq: int, entry: Linked, changes_text: str, form: int) -> str:
    """The chain hash of an entry at `seq` after `prev`, by the form it was sealed in."""
    if form == FORM_PARSED:
        return parsed_link_hash(prev, seq, entry, json.loads(changes_text))
    return stored_link_hash(prev, seq, entry, changes_text)


async def seal_batch(uow: UnitOfWork, *, limit: int = AUDIT_SEAL_BATCH) -> int:
    """Chain up to `limit` unsealed entries after the head; 0 if another sealer is at work."""
    if uow.db.dialect == "postgresql":
        got = await uow.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": SEAL_LOCK_KEY})
        if not got.scalar():
            return 0
    head = (await uow.execute(select(_HEAD).where(_HEAD.c.id == 1).with_for_update())).first()
    last_seq, last_hash = (head.last_seq, head.last_hash) if head else (0, GENESIS)
    found = await uow.execute(
        select(_LOG).where(_LOG.c.chain_seq.is_(None)).order_by(_LOG.c.seq).limit(limit)
    )
    links = []
    for row in found.all():
        last_seq += 1
        entry_hash = _link(last_hash, last_seq, row, row.changes, row.form)
        links.append({"k": row.seq, "c": last_seq, "p": last_hash, "h": entry_hash})
        last_hash = entry_hash
    if not links:
        return 0
    await uow.execute(
        update(_LOG)
        .where(_LOG.c.seq == bindparam("k"))
        .values(chain_seq=bindparam("c"), prev_hash=bindparam("p"), hash=bindparam("h")),
        links,
    )
    if head is None:
        await uow.execute(insert(_HEAD).values(id=1, last_seq=last_seq, last_hash=last_hash))
    else:
        await uow.execute(
            update(_HEAD).where(_HEAD.c.id == 1).values(last_seq=last_seq, last_hash=last_hash)
        )
    return len(links)


async def seal_all(open_uow: OpenUow) -> int:
    """Seal until nothing committed is left unsealed (or another sealer has the lock)."""
    total = 0
    while True:
        async with open_uow() as u:
            sealed = await seal_batch(u)
        total += sealed
        if sealed < AUDIT_SEAL_BATCH:
            return total


class Sealer:
    """A process's background sealer: every interval, seal what is committed and unsealed."""

    def __init__(self, open_uow: OpenUow) -> None:
        self.open_uow = open_uow
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start sealing in the background (once)."""
        if self._task is None:
            self._task = asyncio.create_task(
                repeat(self._seal, AUDIT_SEAL_INTERVAL, what="audit sealing"), name="audit-sealer"
            )

    async def stop(self) -> None:
        """Stop the loop, then seal what is left, so a clean shutdown leaves nothing behind."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await seal_all(self.open_uow)
        except Exception:  # the database may already be gone; the next sealer picks them up
            log.warning("final audit sealing failed", exc_info=True)

    async def _seal(self) -> None:
        await seal_all(self.open_uow)


@dataclass(frozen=True)
class ChainReport:
    """The outcome of verify(): links checked, the first broken one, and overdue entries."""

    checked: int
    broken_seq: int | None = None
    reason: str | None = None
    overdue: int = 0
    """Entries still unsealed longer than the registry's bound after they were written."""

    @property
    def ok(self) -> bool:
        """Whether every sealed link verified."""
        return self.broken_seq is None


async def verify(
    session: AsyncSession, *, now: datetime | None = None, batch: int = 5000
) -> ChainReport:
    """Recompute the chain in order; report the first altered, missing or reordered entry."""
    expected_prev, expected_seq, checked = GENESIS, 1, 0
    while True:
        rows = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.chain_seq >= expected_seq)
                .order_by(AuditEntry.chain_seq)
                .limit(batch)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            if row.chain_seq != expected_seq:
                return ChainReport(checked, expected_seq, f"entry {expected_seq} is missing")
            if row.prev_hash != expected_prev:
                return ChainReport(checked, expected_seq, "link to the previous entry is broken")
            if _link(expected_prev, expected_seq, row, row.changes_text, row.form) != row.hash:
                return ChainReport(checked, expected_seq, "entry was altered after it was written")
            expected_prev, expected_seq = row.hash, expected_seq + 1
            checked += 1
    head = await session.get(AuditChainHead, 1)
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != expected_prev):
        return ChainReport(checked, expected_seq, "entries after the last one found were removed")
    overdue = 0
    if now is not None:
        overdue = int(
            await session.scalar(
                select(func.count())
                .select_from(AuditEntry)
                .where(
                    AuditEntry.chain_seq.is_(None),
                    AuditEntry.occurred_at < now - AUDIT_SEAL_BOUND,
                )
            )
            or 0
        )
    return ChainReport(checked, overdue=overdue)
