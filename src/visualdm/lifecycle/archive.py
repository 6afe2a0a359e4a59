"""Archival (spec 2.1, 2.3): inactive characters and completed quests move to cold storage.

Per batch: read the rows and their dependants and open a `pending` ledger entry; write the file
durably and verify it by re-reading; then, in one transaction, lock the rows, delete those still
equal to what was written, index them as archived and mark the entry `done`. A crash before that
commit leaves every row in the hot tables and a `pending` entry, whose file the next run removes;
after it, the rows are only in the archive. Factions are never archived (spec 2.2).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import ColumnElement, Row, Table, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from visualdm.access.principals import Actor
from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.characters import service as characters
from visualdm.characters.models import Character
from visualdm.db.idset import IdSet
from visualdm.db.types import UTCDateTime
from visualdm.db.unit_of_work import OpenUow, UnitOfWork
from visualdm.errors import NotFound
from visualdm.factions.models import CharacterFaction
from visualdm.lifecycle.base import LIFECYCLE, JobReport, NoProgress, Progress
from visualdm.lifecycle.coldstore import ColdStore, CorruptArchive
from visualdm.lifecycle.models import ArchiveBatch, ArchivedRecord
from visualdm.ownership import LIFECYCLE_BATCH_SIZE, Domain, Module, policy
from visualdm.quests import service as quests
from visualdm.quests.models import CharacterQuest, Quest, QuestAssignmentRequest
from visualdm.settings import Settings

CF: Table = CharacterFaction.__table__  # type: ignore[assignment]
CQ: Table = CharacterQuest.__table__  # type: ignore[assignment]
QR: Table = QuestAssignmentRequest.__table__  # type: ignore[assignment]

# Who writes each dependant table back on restore, and may read it (spec 6.1).
_OWNER = {
    "character_factions": Module.FACTION_MANAGEMENT,
    "character_quests": Module.QUEST_MANAGEMENT,
    "quest_assignment_requests": Module.QUEST_MANAGEMENT,
}


@dataclass(frozen=True)
class Kind:
    """An archivable domain: its table, who deletes and re-creates it, and its dependants."""

    name: str
    domain: Domain
    table: Table
    creator: Module
    dependants: Sequence[tuple[Table, str]]
    eligible: Callable[[Table, datetime], ColumnElement[bool]]
    tags: Callable[[int], list[str]]

    @property
    def module(self) -> Module:
        """The owner module, which reads and deletes the rows."""
        owner = policy(self.domain).owner_module
        assert owner is not None
        return owner

    def cutoff(self, now: datetime) -> datetime:
        """Rows inactive since before this instant are archived."""
        age = policy(self.domain).archive_after_inactive
        assert age is not None
        return now - age


def _inactive(t: Table, before: datetime) -> ColumnElement[bool]:
    return (t.c.deleted_at.is_(None)) & (t.c.last_active_at < before)


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "character",
            Domain.CHARACTER,
            Character.__table__,  # type: ignore[arg-type]
            Module.CHARACTER_CREATION,
            ((CF, "character_id"), (CQ, "character_id"), (QR, "character_id")),
            _inactive,
            characters.tags_of,
        ),
        Kind(
            "quest",
            Domain.QUEST,
            Quest.__table__,  # type: ignore[arg-type]
            Module.QUEST_GENERATION,
            ((CQ, "quest_id"), (QR, "quest_id")),
            lambda t, before: _inactive(t, before) & (t.c.status == "completed"),
            quests.tags_of,
        ),
    )
}


def store_url(settings: Settings) -> str:
    """Where cold storage lives: VDM_ARCHIVE_URL, or data_dir/archive."""
    return settings.archive_url or str((settings.data_dir / "archive").resolve())


def _plain(row: Row[Any]) -> dict[str, Any]:
    """A row as the JSON the archive stores (datetimes as ISO 8601)."""
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(dict(row._mapping), default=str))
    return loaded


def _revive(table: Table, data: dict[str, Any]) -> dict[str, Any]:
    """The column values of an archived row, datetimes parsed back."""
    values = {}
    for column in table.columns:
        value = data.get(column.name)
        if value is not None and isinstance(column.type, UTCDateTime):
            value = datetime.fromisoformat(value)
        values[column.name] = value
    return values


async def _records(u: UnitOfWork, kind: Kind, rows: list[Row[Any]]) -> dict[int, dict[str, Any]]:
    """Build the archive record of each row: the row and its dependants' rows."""
    ids = [r.id for r in rows]
    records = {
        r.id: {"kind": kind.name, "id": r.id, "row": _plain(r), "dependants": {}} for r in rows
    }
    for table, column in kind.dependants:
        async with u.acting_as(_OWNER[table.name]):
            found = await u.session.execute(
                select(table)
                .where(IdSet(ids, u.db.dialect).match(table.c[column]))
                .order_by(table.c.id)
            )
        for dep in found.all():
            owner = getattr(dep, column)
            records[owner]["dependants"].setdefault(str(table.name), []).append(_plain(dep))
    return records


async def _eligible_rows(
    u: UnitOfWork, kind: Kind, before: datetime, *, after: int = 0, ids: list[int] | None = None
) -> list[Row[Any]]:
    t = kind.table
    stmt = select(t).where(kind.eligible(t, before))
    if ids is not None:
        stmt = stmt.where(IdSet(ids, u.db.dialect).match(t.c.id)).with_for_update()
    else:
        stmt = stmt.where(t.c.id > after).limit(LIFECYCLE_BATCH_SIZE)
    async with u.acting_as(kind.module):
        return list((await u.session.execute(stmt.order_by(t.c.id))).all())


async def reconcile(open_uow: OpenUow, store: ColdStore) -> int:
    """Finish what a crashed run left: drop files of `pending` entries; returns how many."""
    async with open_uow() as u:
        pending = list(
            await u.session.scalars(select(ArchiveBatch).where(ArchiveBatch.state == "pending"))
        )
        for batch in pending:
            # Its rows never left the hot tables (that commit also marks the entry done).
            store.remove(batch.path)
            batch.state = "abandoned"
            batch.completed_at = u.clock.now()
    return len(pending)


async def _archive_batch(
    open_uow: OpenUow, store: ColdStore, kind: Kind, before: datetime, after: int
) -> tuple[int, int]:
    """Archive the next batch after id `after`; returns (last id looked at, rows archived)."""
    async with open_uow() as u:
        rows = await _eligible_rows(u, kind, before, after=after)
        if not rows:
            return after, 0
        records = await _records(u, kind, rows)
        batch = ArchiveBatch(kind=kind.name, path="", state="pending", created_at=u.clock.now())
        u.session.add(batch)
        await u.session.flush()
        batch.path = f"{kind.name}/{batch.id:012d}.jsonl.gz"
        batch_id, path = batch.id, batch.path
    last = rows[-1].id
    written = store.write_records(path, records.values())
    async with open_uow() as u:
        now = u.clock.now()
        current = await _eligible_rows(u, kind, before, ids=list(records))
        fresh = await _records(u, kind, current)
        # A row changed since it was written (a move, a new membership) stays hot this time.
        ids = [i for i, rec in fresh.items() if rec == records[i]]
        if ids:
            async with u.acting_as(kind.module):
                await u.session.execute(
                    delete(kind.table).where(IdSet(ids, u.db.dialect).match(kind.table.c.id))
                )
            await u.session.execute(
                insert(ArchivedRecord),
                [
                    {"kind": kind.name, "record_id": i, "batch_id": batch_id, "archived_at": now}
                    for i in ids
                ],
            )
            async with u.acting_as(kind.module):
                audit.record(
                    u,
                    actor=LIFECYCLE,
                    action="archive",
                    entity=kind.name,
                    entity_id=None,
                    changes={
                        "records": ids,
                        "inactive_since_before": before,
                        "file": path,
                        "sha256": written.sha256,
                        "dependants": {
                            t.name: sum(len(records[i]["dependants"].get(t.name, [])) for i in ids)
                            for t, _ in kind.dependants
                        },
                    },
                )
            for record_id in ids:
                cache.evict(u, kind.domain, record_id, tags=kind.tags(record_id))
        await u.session.execute(
            update(ArchiveBatch)
            .where(ArchiveBatch.id == batch_id)
            .values(
                state="done" if ids else "abandoned",
                row_count=len(ids),
                sha256=written.sha256,
                size_bytes=written.size,
                completed_at=now,
            )
        )
    if not ids:
        store.remove(path)
    return last, len(ids)


async def count_eligible(open_uow: OpenUow, kind: Kind, now: datetime) -> int:
    """How many rows of `kind` an archive run at `now` would move."""
    t = kind.table
    async with open_uow() as u, u.acting_as(kind.module):
        found = await u.session.scalar(
            select(func.count()).select_from(t).where(kind.eligible(t, kind.cutoff(now)))
        )
    return int(found or 0)


async def archive(
    open_uow: OpenUow,
    store: ColdStore,
    *,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> JobReport:
    """Move every inactive character and completed quest to cold storage, batch by batch."""
    progress = progress or NoProgress()
    report = JobReport("archive", dry_run=dry_run)
    if not dry_run:
        await reconcile(open_uow, store)
    for kind in KINDS.values():
        total = await count_eligible(open_uow, kind, now)
        task = f"archive {kind.name}"
        progress.start(task, total)
        report.add(kind.name, 0)
        if dry_run:
            report.add(kind.name, total)
            progress.advance(task, total)
            continue
        after, before = 0, kind.cutoff(now)
        while True:
            last, moved = await _archive_batch(open_uow, store, kind, before, after)
            if last == after:
                break
            after = last
            report.add(kind.name, moved)
            progress.advance(task, moved)
    if not dry_run:
        await write_manifest(open_uow, store)
    return report


async def list_batches(open_uow: OpenUow) -> list[dict[str, Any]]:
    """Every done archive file, oldest first, with how many of its records are still archived."""
    async with open_uow() as u:
        still = dict(
            (
                await u.session.execute(
                    select(ArchivedRecord.batch_id, func.count()).group_by(ArchivedRecord.batch_id)
                )
            ).all()
        )
        batches = await u.session.scalars(
            select(ArchiveBatch).where(ArchiveBatch.state == "done").order_by(ArchiveBatch.id)
        )
        return [
            {
                "id": b.id,
                "kind": b.kind,
                "path": b.path,
                "rows": b.row_count,
                "archived_now": int(still.get(b.id, 0)),
                "sha256": b.sha256,
                "size_bytes": b.size_bytes,
                "completed_at": b.completed_at,
            }
            for b in batches
        ]


async def write_manifest(open_uow: OpenUow, store: ColdStore) -> dict[str, Any]:
    """Write manifest.json (counts and sha256 per file) from the ledger; returns it."""
    batches = await list_batches(open_uow)
    totals: dict[str, int] = {}
    for b in batches:
        totals[b["kind"]] = totals.get(b["kind"], 0) + b["rows"]
    manifest = {
        "files": [
            {k: b[k] for k in ("path", "kind", "rows", "sha256", "size_bytes")} for b in batches
        ],
        "totals": totals,
    }
    store.write_manifest(manifest)
    return manifest


async def _skip_missing(u: UnitOfWork, table: Table, row: dict[str, Any]) -> bool:
    """Insert an archived dependant row; False if what it refers to is gone (it is skipped)."""
    try:
        async with u.session.begin_nested():
            await u.session.execute(insert(table).values(**_revive(table, row)))
    except IntegrityError:
        return False
    return True


async def restore(
    open_uow: OpenUow, store: ColdStore, *, actor: Actor, kind: str, record_id: int
) -> dict[str, Any]:
    """Bring an archived record back to the hot tables with its dependants; NotFound if absent.

    Raises CorruptArchive if its file no longer matches the ledger's checksum. Dependants whose
    counterpart is gone (a membership of a purged faction) are skipped and named in the result.
    """
    spec = KINDS.get(kind)
    if spec is None:
        raise NotFound("archive kind", kind, f"nothing of kind {kind!r} is archived")
    async with open_uow() as u:
        found = (
            await u.session.execute(
                select(ArchivedRecord, ArchiveBatch)
                .join(ArchiveBatch, ArchiveBatch.id == ArchivedRecord.batch_id)
                .where(ArchivedRecord.kind == kind, ArchivedRecord.record_id == record_id)
            )
        ).one_or_none()
        if found is None:
            raise NotFound(kind, record_id, f"{kind} {record_id} is not in the archive")
        entry, batch = found
        store.verify(batch.path, batch.sha256)
        record = next((r for r in store.read_records(batch.path) if r["id"] == record_id), None)
        if record is None:
            raise CorruptArchive(f"{batch.path} does not hold {kind} {record_id}")
        now = u.clock.now()
        values = _revive(spec.table, record["row"])
        values.update(last_active_at=now, updated_at=now, version=values["version"] + 1)
        async with u.acting_as(spec.creator):
            await u.session.execute(insert(spec.table).values(**values))
        restored: dict[str, int] = {}
        skipped: dict[str, list[int]] = {}
        for table, _ in spec.dependants:
            for row in record["dependants"].get(table.name, []):
                async with u.acting_as(_OWNER[table.name]):
                    ok = await _skip_missing(u, table, row)
                if ok:
                    restored[table.name] = restored.get(table.name, 0) + 1
                else:
                    skipped.setdefault(table.name, []).append(row["id"])
        await u.session.delete(entry)
        async with u.acting_as(spec.module):
            audit.record(
                u,
                actor=actor,
                action="unarchive",
                entity=kind,
                entity_id=record_id,
                changes={"file": batch.path, "restored": restored, "skipped": skipped},
            )
        cache.invalidate(u, spec.tags(record_id))
    return {"kind": kind, "id": record_id, "restored": restored, "skipped": skipped}
