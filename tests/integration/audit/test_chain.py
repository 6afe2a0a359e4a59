"""The audit log: entries are chained, and verify() finds the first altered or removed one."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from tests.conftest import UowFactory
from visualdm.access.principals import SystemActor, UserActor
from visualdm.audit import service as audit
from visualdm.audit.models import AuditEntry
from visualdm.ownership import Module, Role

ACTOR = SystemActor("test")


async def _write_entries(uow: UowFactory, count: int) -> None:
    for i in range(count):
        async with uow() as u, u.acting_as(Module.CHARACTER_MANAGEMENT):
            audit.record(
                u,
                actor=UserActor(7, frozenset({Role.GM})) if i % 2 else ACTOR,
                action="update",
                entity="character",
                entity_id=i,
                changes={"name": {"old": f"a{i}", "new": f"b{i}"}},
                personal={"ip": "10.0.0.1"} if i == 2 else None,
            )


async def test_a_fresh_chain_verifies(uow: UowFactory) -> None:
    await _write_entries(uow, 5)
    async with uow() as u:
        report = await audit.verify(u.session)
        seqs = (await u.session.scalars(select(AuditEntry.seq).order_by(AuditEntry.seq))).all()
    assert report.ok, report
    assert report.checked == 5
    assert list(seqs) == [1, 2, 3, 4, 5]


async def test_an_altered_entry_is_reported_as_the_first_broken_link(uow: UowFactory) -> None:
    await _write_entries(uow, 5)
    async with uow() as u:
        await u.session.execute(
            update(AuditEntry).where(AuditEntry.seq == 3).values(entity_id="999")
        )
    async with uow() as u:
        report = await audit.verify(u.session)
    assert not report.ok
    assert report.broken_seq == 3
    assert report.checked == 2


async def test_a_removed_middle_entry_is_reported(uow: UowFactory) -> None:
    await _write_entries(uow, 4)
    async with uow() as u:
        await u.session.execute(delete(AuditEntry).where(AuditEntry.seq == 2))
    async with uow() as u:
        report = await audit.verify(u.session)
    assert report.broken_seq == 2


async def test_removing_the_newest_entries_is_reported(uow: UowFactory) -> None:
    await _write_entries(uow, 4)
    async with uow() as u:
        await u.session.execute(delete(AuditEntry).where(AuditEntry.seq >= 3))
    async with uow() as u:
        report = await audit.verify(u.session)
    assert report.broken_seq == 3


async def test_erasing_personal_fields_keeps_the_chain_valid(uow: UowFactory) -> None:
    await _write_entries(uow, 4)
    async with uow() as u:
        await u.session.execute(update(AuditEntry).values(personal=None))
        remaining = await u.session.scalar(
            select(func.count()).where(AuditEntry.personal_digest.is_not(None))
        )
    async with uow() as u:
        report = await audit.verify(u.session)
    assert report.ok
    assert remaining == 1


async def test_a_rolled_back_unit_of_work_leaves_no_audit_entry(uow: UowFactory) -> None:
    class Boom(Exception):
        pass

    try:
        async with uow() as u:
            audit.record(u, actor=ACTOR, action="create", entity="faction", entity_id=1)
            raise Boom
    except Boom:
        pass
    async with uow() as u:
        count = await u.session.scalar(select(func.count()).select_from(AuditEntry))
    assert count == 0
