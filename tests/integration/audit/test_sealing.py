"""Sealing under concurrency: writers never wait on one another, sealers never chain twice."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from tests.conftest import UowFactory
from visualdm.access.principals import SystemActor
from visualdm.audit import seal
from visualdm.audit import service as audit
from visualdm.audit.models import AuditEntry
from visualdm.ownership import Module

ACTOR = SystemActor("test")
WRITERS = 6
EACH = 15


async def _writer(uow: UowFactory, n: int) -> None:
    for i in range(EACH):
        async with uow() as u, u.acting_as(Module.FACTION_MANAGEMENT):
            audit.record(
                u,
                actor=ACTOR,
                action="update",
                entity="faction",
                entity_id=n * 1000 + i,
                changes={"big": 2**70, "float": 1e16, "nested": {"x": [1e308, -0.0]}},
            )


async def _sealer(uow: UowFactory, stop: asyncio.Event) -> int:
    total = 0
    while not stop.is_set():
        async with uow() as u:
            total += await seal.seal_batch(u, limit=7)
        await asyncio.sleep(0)
    return total


async def test_concurrent_writers_and_sealers_build_one_unbroken_chain(uow: UowFactory) -> None:
    stop = asyncio.Event()
    sealers = [asyncio.create_task(_sealer(uow, stop)) for _ in range(3)]
    await asyncio.gather(*(_writer(uow, n) for n in range(WRITERS)))
    stop.set()
    sealed_by_loops = sum(await asyncio.gather(*sealers))
    sealed_at_end = await seal.seal_all(uow)
    async with uow() as u:
        report = await seal.verify(u.session)
        positions = (await u.session.scalars(select(AuditEntry.chain_seq))).all()
        unsealed = await u.session.scalar(
            select(func.count()).where(AuditEntry.chain_seq.is_(None))
        )
    assert report.ok, report
    assert report.checked == WRITERS * EACH
    assert sealed_by_loops + sealed_at_end == WRITERS * EACH  # nothing chained twice
    assert sorted(positions) == list(range(1, WRITERS * EACH + 1))
    assert unsealed == 0
