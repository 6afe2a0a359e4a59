"""The audit log: entries are sealed into a chain; verify() finds the first altered or removed."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update

from tests.conftest import UowFactory
from visualdm.access.principals import SystemActor, UserActor
from visualdm.audit import seal
from visualdm.audit import service as audit
from visualdm.audit.models import AuditEntry
from visualdm.clock import FrozenClock
from visualdm.ownership import AUDIT_SEAL_BOUND, Module, Role

ACTOR = SystemActor("test")


async def _record(uow: UowFactory, count: int, *, start: int = 0) -> None:
    for i in range(start, start + count):
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


async def _write_entries(uow: UowFactory, count: int) -> None:
    await _record(uow, count)
    async with uow() as u:
        assert await seal.seal_batch(u) == count


async def test_a_fresh_chain_verifies(uow: UowFactory) -> None:
    await _write_entries(uow, 5)
    async with uow() as u:
        report = await seal.verify(u.session)
        chain = (
            await u.session.scalars(select(AuditEntry.chain_seq).order_by(AuditEntry.chain_seq))
        ).all()
    assert report.ok, report
    assert report.checked == 5
    assert list(chain) == [1, 2, 3, 4, 5]


async def test_writes_leave_entries_unsealed_until_the_sealer_chains_them(
    uow: UowFactory,
) -> None:
    await _record(uow, 3)
    async with uow() as u:
        unsealed = await u.session.scalar(
            select(func.count()).where(AuditEntry.chain_seq.is_(None), AuditEntry.hash.is_(None))
        )
        before = await seal.verify(u.session)
    assert unsealed == 3
    assert before.ok
    assert before.checked == 0
    async with uow() as u:
        assert await seal.seal_batch(u) == 3
    await _record(uow, 2, start=3)
    async with uow() as u:
        assert await seal.seal_batch(u) == 2
        assert await seal.seal_batch(u) == 0
    async with uow() as u:
        after = await seal.verify(u.session)
    assert after.ok
    assert after.checked == 5


async def test_verify_reports_entries_unsealed_past_the_bound(
    uow: UowFactory, clock: FrozenClock
) -> None:
    await _record(uow, 2)
    async with uow() as u:
        fresh = await seal.verify(u.session, now=clock.now())
        late = await seal.verify(u.session, now=clock.now() + AUDIT_SEAL_BOUND * 2)
    assert fresh.overdue == 0
    assert late.overdue == 2
    assert late.ok  # unsealed is not broken: nothing sealed was touched


async def test_an_altered_entry_is_reported_as_the_first_broken_link(uow: UowFactory) -> None:
    await _write_entries(uow, 5)
    async with uow() as u:
        await u.session.execute(
            update(AuditEntry).where(AuditEntry.chain_seq == 3).values(entity_id="999")
        )
    async with uow() as u:
        report = await seal.verify(u.session)
    assert not report.ok
    assert report.broken_seq == 3
    assert report.checked == 2


async def test_altered_changes_text_is_reported(uow: UowFactory) -> None:
    await _write_entries(uow, 3)
    async with uow() as u:
        await u.session.execute(
            update(AuditEntry)
            .where(AuditEntry.chain_seq == 2)
            .values(changes_text='{"name":{"new":"forged","old":"a1"}}')
        )
    async with uow() as u:
        report = await seal.verify(u.session)
    assert report.broken_seq == 2


async def test_a_removed_middle_entry_is_reported(uow: UowFactory) -> None:
    await _write_entries(uow, 4)
    async with uow() as u:
        await u.session.execute(delete(AuditEntry).where(AuditEntry.chain_seq == 2))
    async with uow() as u:
        report = await seal.verify(u.session)
    assert report.broken_seq == 2


async def test_removing_the_newest_entries_is_reported(uow: UowFactory) -> None:
    await _write_entries(uow, 4)
    async with uow() as u:
        await u.session.execute(delete(AuditEntry).where(AuditEntry.chain_seq >= 3))
    async with uow() as u:
        report = await seal.verify(u.session)
    assert report.broken_seq == 3


async def test_erasing_personal_fields_keeps_the_chain_valid(uow: UowFactory) -> None:
    await _write_entries(uow, 4)
    async with uow() as u:
        await u.session.execute(update(AuditEntry).values(personal=None))
        remaining = await u.session.scalar(
            select(func.count()).where(AuditEntry.personal_digest.is_not(None))
        )
    async with uow() as u:
        report = await seal.verify(u.session)
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
