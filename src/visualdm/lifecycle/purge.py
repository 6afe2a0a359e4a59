"""Purge (spec 2.1-2.3, 2.5): rows soft-deleted longer than their retention are deleted for good.

Each domain is purged by its owner module in keyset batches, one transaction per batch. Dependent
rows go with them by the schema's ON DELETE CASCADE / SET NULL; they are read first so the audit
entry of each batch names every affected record (spec 6.3), and the cache forgets them after
commit. Idempotent and resumable: a killed run leaves whole batches done and the rest untouched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, or_, select

from visualdm.audit import service as audit
from visualdm.cache import hooks as cache
from visualdm.characters import service as characters
from visualdm.characters.models import Character
from visualdm.db.idset import IdSet
from visualdm.db.unit_of_work import OpenUow, UnitOfWork
from visualdm.factions import service as factions
from visualdm.factions.models import CharacterFaction, Faction, FactionRelation
from visualdm.lifecycle.base import LIFECYCLE, JobReport, NoProgress, Progress
from visualdm.lifecycle.personal import erase_personal_audit
from visualdm.ownership import LIFECYCLE_BATCH_SIZE, Domain, Module, policy, retention
from visualdm.quests import service as quests
from visualdm.quests.models import CharacterQuest, Quest, QuestAssignmentRequest
from visualdm.users.models import User

Dependant = tuple[str, Table, str | tuple[str, ...], Callable[[IdSet], ColumnElement[bool]]]
"""(name in the audit entry, table, key column(s) to record, which rows depend on the ids)."""


@dataclass(frozen=True)
class Target:
    """A soft-deleted domain: its table, owner module, cache tags and dependants."""

    domain: Domain
    entity: str
    table: Table
    tags: Callable[[int], list[str]]
    dependants: Sequence[Dependant]

    @property
    def module(self) -> Module:
        """The owner module, which deletes the rows."""
        owner = policy(self.domain).owner_module
        assert owner is not None
        return owner


def _t(model: type[Any]) -> Table:
    table: Table = model.__table__
    return table


CF, CQ, QR = _t(CharacterFaction), _t(CharacterQuest), _t(QuestAssignmentRequest)
FR, CH = _t(FactionRelation), _t(Character)

TARGETS: tuple[Target, ...] = (
    Target(
        Domain.CHARACTER,
        "character",
        CH,
        characters.tags_of,
        (
            ("memberships", CF, "id", lambda ids: ids.match(CF.c.character_id)),
            ("assignments", CQ, "id", lambda ids: ids.match(CQ.c.character_id)),
            ("assignment_requests", QR, "id", lambda ids: ids.match(QR.c.character_id)),
        ),
    ),
    Target(
        Domain.FACTION,
        "faction",
        _t(Faction),
        lambda i: [*factions.tags_of(i), factions.members_tag(i)],
        (
            ("memberships", CF, "id", lambda ids: ids.match(CF.c.faction_id)),
            (
                "relations",
                FR,
                ("faction_a_id", "faction_b_id"),
                lambda ids: or_(ids.match(FR.c.faction_a_id), ids.match(FR.c.faction_b_id)),
            ),
            (
                "children_detached",
                _t(Faction),
                "id",
                lambda ids: ids.match(_t(Faction).c.parent_id),
            ),
        ),
    ),
    Target(
        Domain.QUEST,
        "quest",
        _t(Quest),
        quests.tags_of,
        (
            ("assignments", CQ, "id", lambda ids: ids.match(CQ.c.quest_id)),
            ("assignment_requests", QR, "id", lambda ids: ids.match(QR.c.quest_id)),
        ),
    ),
    Target(
        Domain.AUTHENTICATION,
        "user",
        _t(User),
        lambda i: [f"user:{i}"],
        (("characters_orphaned", CH, "id", lambda ids: ids.match(CH.c.owner_id)),),
    ),
)

# Owners read their dependants themselves (spec 6.1 lets them); the Authentication System may
# not read characters, so the Character System reads which ones a purged user owned.
_READER = {"characters": Module.CHARACTER_MANAGEMENT}


def cutoff(target: Target, now: datetime) -> datetime:
    """Rows soft-deleted before this instant have outlived their retention."""
    return now - retention(target.domain)


def _expired(target: Target, before: datetime) -> ColumnElement[bool]:
    return target.table.c.deleted_at < before


async def count_expired(open_uow: OpenUow, target: Target, now: datetime) -> int:
    """How many rows of `target` a purge at `now` would delete."""
    async with open_uow() as u, u.acting_as(target.module):
        found = await u.session.scalar(
            select(func.count())
            .select_from(target.table)
            .where(_expired(target, cutoff(target, now)))
        )
    return int(found or 0)


async def _purge_batch(u: UnitOfWork, target: Target, before: datetime, after: int) -> list[int]:
    """Delete the next batch of expired rows with id > `after`; returns their ids."""
    async with u.acting_as(target.module):
        return await _purge_batch_as_owner(u, target, before, after)


async def _purge_batch_as_owner(
    u: UnitOfWork, target: Target, before: datetime, after: int
) -> list[int]:
    table = target.table
    async with u.acting_as(target.module):
        ids = list(
            (
                await u.session.scalars(
                    select(table.c.id)
                    .where(_expired(target, before), table.c.id > after)
                    .order_by(table.c.id)
                    .limit(LIFECYCLE_BATCH_SIZE)
                    .with_for_update()
                )
            ).all()
        )
    if not ids:
        return ids
    affected: dict[str, Any] = {}
    batch = IdSet(ids, u.db.dialect)
    async with u.acting_as(target.module):
        for name, dep, key, where in target.dependants:
            columns = [dep.c[k] for k in ((key,) if isinstance(key, str) else key)]
            async with u.acting_as(_READER.get(dep.name, target.module)):
                rows = (await u.session.execute(select(*columns).where(where(batch)))).all()
            affected[name] = sorted(r[0] if len(r) == 1 else list(r) for r in rows)
        await u.session.execute(delete(table).where(batch.match(table.c.id)))
        erased = 0
        if target.domain is Domain.AUTHENTICATION:
            erased = await erase_personal_audit(u, ids)
        audit.record(
            u,
            actor=LIFECYCLE,
            action="purge",
            entity=target.entity,
            entity_id=None,
            changes={
                "records": ids,
                "deleted_before": before,
                "retention_days": retention(target.domain).days,
                **affected,
                **({"audit_personal_erased": erased} if erased else {}),
            },
        )
    for record_id in ids:
        cache.evict(u, target.domain, record_id, tags=target.tags(record_id))
    return ids


async def purge(
    open_uow: OpenUow,
    *,
    now: datetime,
    dry_run: bool = False,
    progress: Progress | None = None,
    targets: Sequence[Target] = TARGETS,
) -> JobReport:
    """Delete every row soft-deleted longer than its domain's retention, batch by batch."""
    progress = progress or NoProgress()
    report = JobReport("purge", dry_run=dry_run)
    for target in targets:
        total = await count_expired(open_uow, target, now)
        task = f"purge {target.entity}"
        progress.start(task, total)
        if dry_run:
            report.add(target.entity, total)
            progress.advance(task, total)
            continue
        before, after = cutoff(target, now), 0
        report.add(target.entity, 0)
        while True:
            async with open_uow() as u:
                ids = await _purge_batch(u, target, before, after)
            if not ids:
                break
            after = ids[-1]
            report.add(target.entity, len(ids))
            progress.advance(task, len(ids))
    return report
