"""Quest assignment queue (spec 5.2): FIFO per quest, each request applied exactly once."""

from __future__ import annotations

import asyncio
import random
from contextlib import AbstractAsyncContextManager

from sqlalchemy import select

from tests.conftest import UowFactory
from tests.integration.lifecycle.conftest import World
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database, create_database
from visualdm.db.unit_of_work import UnitOfWork, unit_of_work
from visualdm.lifecycle.queue import enqueue_assignment, get_request, process_pending
from visualdm.quests import service as quests
from visualdm.quests.models import CharacterQuest, QuestAssignmentRequest
from visualdm.quests.schemas import QuestCreate
from visualdm.settings import Settings


async def test_requests_are_applied_in_arrival_order_and_late_ones_rejected_when_full(
    uow: UowFactory, world: World
) -> None:
    async with uow() as u:
        quest = await quests.create_quest(
            u, actor=world.gm, data=QuestCreate(title="Few", status="available", max_assignees=1)
        )
        heroes = [
            await characters.create_character(
                u, actor=world.player, data=CharacterCreate(name=f"h{i}", race="elf")
            )
            for i in range(3)
        ]
    requests = []
    for hero in heroes:
        async with uow() as u:
            requests.append(
                await enqueue_assignment(u, actor=world.gm, quest_id=quest.id, character_id=hero.id)
            )
    assert {r.status for r in requests} == {"pending"}
    assert await process_pending(uow, worker_id="w1") == 3
    async with uow() as u:
        done = [await get_request(u, actor=world.gm, request_id=r.id) for r in requests]
    assert [d.status for d in done] == ["applied", "rejected", "rejected"]
    assert done[0].assignment_id is not None
    assert "full" in (done[1].outcome or "")
    assert await process_pending(uow, worker_id="w1") == 0


async def test_concurrent_workers_apply_each_request_once_and_the_first_arrivals_win(
    database: Database, clock: FrozenClock, world: World, uow: UowFactory
) -> None:
    postgres = database.dialect == "postgresql"
    n_quests, n_heroes, slots, n_workers = (20, 25, 3, 8) if postgres else (4, 8, 2, 3)
    url = database.engine.url.render_as_string(hide_password=False)
    db = create_database(
        Settings(database_url=url, db_pool_size=n_workers + 4), role_prefix=database.role_prefix
    )

    def open_uow() -> AbstractAsyncContextManager[UnitOfWork]:
        return unit_of_work(db, clock=clock)

    try:
        async with open_uow() as u:
            quest_ids = [
                (
                    await quests.create_quest(
                        u,
                        actor=world.gm,
                        data=QuestCreate(title=f"q{i}", status="available", max_assignees=slots),
                    )
                ).id
                for i in range(n_quests)
            ]
            hero_ids = [
                (
                    await characters.create_character(
                        u, actor=world.player, data=CharacterCreate(name=f"h{i}", race="elf")
                    )
                ).id
                for i in range(n_heroes)
            ]
        pairs = [(q, h) for q in quest_ids for h in hero_ids]
        random.Random(7).shuffle(pairs)
        gate = asyncio.Semaphore(4)
        enqueuing = True

        async def enqueue(q: int, h: int) -> None:
            async with gate, open_uow() as u:
                await enqueue_assignment(u, actor=world.gm, quest_id=q, character_id=h)

        async def worker(name: str) -> int:
            done = 0
            while True:
                got = await process_pending(open_uow, worker_id=name, limit=4)
                done += got
                if not got:
                    if not enqueuing:
                        return done
                    await asyncio.sleep(0.01)

        workers = [asyncio.create_task(worker(f"w{i}")) for i in range(n_workers)]
        await asyncio.gather(*(enqueue(q, h) for q, h in pairs))
        enqueuing = False
        counts = await asyncio.gather(*workers)
        # A worker may have stopped just before the last enqueue committed: drain the rest.
        counts.append(await process_pending(open_uow, worker_id="drain"))
        assert sum(counts) == len(pairs), "each request processed exactly once"

        async with open_uow() as u:
            rows = list(await u.session.scalars(select(QuestAssignmentRequest)))
            held = list(await u.session.scalars(select(CharacterQuest)))
        assert len(rows) == len(pairs)
        assert {r.status for r in rows} <= {"applied", "rejected"}
        for q in quest_ids:
            mine = sorted((r for r in rows if r.quest_id == q), key=lambda r: r.id)
            winners = {r.character_id for r in mine[:slots]}
            assert {r.character_id for r in mine if r.status == "applied"} == winners
            assert {a.character_id for a in held if a.quest_id == q} == winners
    finally:
        await db.dispose()
