"""The transactional outbox: domain events are rows written in the change's own transaction.

After the commit, the writing process delivers its events at once and acknowledges them in
batches (the rows are deleted). A row still there after the registry's grace period belongs to
a process that died between its commit and its publication: any process's relay recovers it,
invalidating the cache tags the change touched and delivering the event. Delivery is at least
once; buses drop an event id they have already delivered (events/bus.py), so handlers see each
event once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter
from sqlalchemy import FetchedValue, Index, String, Table, Text, delete, select
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.clock import Clock
from visualdm.db.base import Base
from visualdm.db.types import Id, UTCDateTime
from visualdm.events.bus import DomainEvent, EventBus
from visualdm.ownership import (
    OUTBOX_ACK_INTERVAL,
    OUTBOX_BATCH,
    OUTBOX_GRACE,
    OUTBOX_RELAY_INTERVAL,
)
from visualdm.periodic import repeat

if TYPE_CHECKING:
    from visualdm.db.unit_of_work import OpenUow, UnitOfWork

log = structlog.get_logger(__name__)

CACHE_ONLY = "cache.invalidated"
"""The event of a change that touched cached data but announced nothing else."""


class OutboxEvent(Base):
    """A committed domain event not yet acknowledged by the process that wrote it."""

    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_occurred_at", "occurred_at"),
        # Module roles may insert but not read: never ask for the new key back.
        {"implicit_returning": False},
    )

    seq: Mapped[int] = mapped_column(
        Id, primary_key=True, autoincrement=False, server_default=FetchedValue()
    )
    event_id: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(64))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)


_TABLE: Table = OutboxEvent.__table__  # type: ignore[assignment]


def rows_of(
    events: Sequence[DomainEvent], tags: Iterable[str], now: datetime
) -> list[dict[str, Any]]:
    """The outbox rows of one transaction: its events, each carrying the cache tags it touched."""
    tag_text = orjson.dumps(sorted(set(tags))).decode()
    if not events:
        events = [DomainEvent(CACHE_ONLY, "cache", "", now)]
    return [
        {
            "event_id": e.id,
            "name": e.name,
            "entity": e.entity,
            "entity_id": str(e.entity_id),
            "occurred_at": e.occurred_at,
            "payload": orjson.dumps(e.payload, default=str).decode(),
            "tags": tag_text,
        }
        for e in events
    ]


def stage(uow: UnitOfWork) -> list[str]:
    """Queue the transaction's events (and cache tags) as outbox rows; returns their ids."""
    rows = rows_of(uow.events, uow.cache_tags, uow.clock.now())
    uow.append_rows(_TABLE, rows)
    return [r["event_id"] for r in rows]


def _decode(row: Mapping[Any, Any]) -> DomainEvent:
    """The event an outbox row holds."""
    entity_id = str(row["entity_id"])
    return DomainEvent(
        row["name"],
        row["entity"],
        int(entity_id) if entity_id.isdigit() else entity_id,
        row["occurred_at"],
        orjson.loads(row["payload"]),
        id=row["event_id"],
    )


class TagInvalidator(Protocol):
    """What the relay needs of the cache."""

    async def invalidate_tags(self, tags: Sequence[str]) -> None: ...


class Outbox:
    """A process's side of the outbox: batched acknowledgements and the recovering relay."""

    def __init__(
        self,
        open_uow: OpenUow,
        *,
        bus: EventBus,
        clock: Clock,
        cache: TagInvalidator | None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.open_uow = open_uow
        self.bus = bus
        self.clock = clock
        self.cache = cache
        self._acked: list[str] = []
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.recovered = Counter(
            "vdm_outbox_recovered",
            "Events delivered by a relay because their writer never acknowledged them.",
            registry=registry,
        )

    def acknowledge(self, event_ids: Sequence[str]) -> None:
        """Note that this process delivered `event_ids`; their rows are deleted soon, in batch.

        Only a started outbox (a server, whose events reach the other processes) acknowledges:
        a command's events stay for a server's relay to deliver.
        """
        if self._tasks:
            self._acked.extend(event_ids)
            self._wake.set()

    async def flush_acknowledged(self) -> int:
        """Delete the rows of every acknowledged event now; returns how many ids were sent."""
        ids, self._acked = self._acked, []
        for start in range(0, len(ids), OUTBOX_BATCH):
            chunk = ids[start : start + OUTBOX_BATCH]
            async with self.open_uow() as u:
                await u.execute(delete(_TABLE).where(_TABLE.c.event_id.in_(chunk)))
        return len(ids)

    async def recover(self) -> int:
        """Deliver the events whose writers never acknowledged them in time; returns how many."""
        total = 0
        while True:
            async with self.open_uow() as u:
                cutoff = self.clock.now() - OUTBOX_GRACE
                found = (
                    await u.execute(
                        select(_TABLE)
                        .where(_TABLE.c.occurred_at < cutoff)
                        .order_by(_TABLE.c.seq)
                        .limit(OUTBOX_BATCH)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                if not found:
                    return total
                tags = sorted({t for row in found for t in orjson.loads(row.tags)})
                if tags and self.cache is not None:
                    await self.cache.invalidate_tags(tags)
                events = [_decode(row._mapping) for row in found if row.name != CACHE_ONLY]
                # Delivered before the rows go: if this process dies now, another relay
                # delivers again and the buses drop what they already saw.
                await self.bus.publish(events)
                await u.execute(delete(_TABLE).where(_TABLE.c.seq.in_([row.seq for row in found])))
            self.recovered.inc(len(events))
            log.info("outbox events recovered", count=len(events))
            total += len(found)

    def start(self) -> None:
        """Start the acknowledgement and relay loops (once)."""
        if not self._tasks:
            self._tasks = [
                asyncio.create_task(self._ack_loop(), name="outbox-ack"),
                asyncio.create_task(
                    repeat(self.recover, OUTBOX_RELAY_INTERVAL, what="outbox relay"),
                    name="outbox-relay",
                ),
            ]

    async def stop(self) -> None:
        """Stop the loops, then send what was acknowledged so far."""
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.flush_acknowledged()
        except Exception:  # rows left behind are recovered (and dropped as seen) later
            log.warning("outbox acknowledgements not sent", exc_info=True)

    async def _ack_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # Gather the acknowledgements of a burst of writes into one statement.
            await asyncio.sleep(OUTBOX_ACK_INTERVAL.total_seconds())
            try:
                await self.flush_acknowledged()
            except Exception:
                log.warning("outbox acknowledgement failed; the relay will catch up", exc_info=True)
