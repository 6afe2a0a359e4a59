"""The transactional outbox: events commit with their change, and none is lost or doubled."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from sqlalchemy import func, select

from tests.conftest import UowFactory
from tests.support.world import add_user
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.events.bus import DomainEvent, InProcessBus
from visualdm.events.outbox import Outbox, OutboxEvent
from visualdm.ownership import OUTBOX_GRACE


class Recorder:
    """A subscriber that keeps every event delivered to it."""

    def __init__(self, bus: InProcessBus) -> None:
        self.events: list[DomainEvent] = []
        bus.subscribe("", self.handle)

    async def handle(self, event: DomainEvent) -> None:
        self.events.append(event)


class TagLog:
    """A cache stand-in that records the tags it was told to invalidate."""

    def __init__(self) -> None:
        self.tags: list[str] = []

    async def invalidate_tags(self, tags: Sequence[str]) -> None:
        self.tags.extend(tags)


async def _rows(uow: UowFactory) -> list[OutboxEvent]:
    async with uow() as u:
        return list((await u.session.scalars(select(OutboxEvent).order_by(OutboxEvent.seq))).all())


async def _make_character(uow: UowFactory, name: str = "Herald") -> int:
    async with uow() as u:
        gm = await add_user(u.session, f"gm_{name.lower()}")
        made = await characters.create_character(
            u, actor=gm, data=CharacterCreate(name=name, race="elf")
        )
    return made.id


async def test_a_committed_change_leaves_its_events_and_tags_in_the_outbox(
    uow: UowFactory,
) -> None:
    cid = await _make_character(uow)
    rows = await _rows(uow)
    assert [(r.name, r.entity, r.entity_id) for r in rows] == [
        ("character.created", "character", str(cid))
    ]
    assert f"character:{cid}" in rows[0].tags


async def test_a_rolled_back_change_leaves_no_event(uow: UowFactory) -> None:
    class Boom(Exception):
        pass

    try:
        async with uow() as u:
            gm = await add_user(u.session, "gamemaster")
            await characters.create_character(
                u, actor=gm, data=CharacterCreate(name="Ghost", race="elf")
            )
            raise Boom
    except Boom:
        pass
    assert await _rows(uow) == []


async def test_a_started_outbox_deletes_what_its_process_delivered(
    database: Database, clock: FrozenClock
) -> None:
    bus = InProcessBus()
    got = Recorder(bus)
    outbox = Outbox(lambda: unit_of_work(database, clock=clock), bus=bus, clock=clock, cache=None)

    def opened() -> object:
        return unit_of_work(database, clock=clock, bus=bus, outbox=outbox)

    outbox.start()
    try:
        await _make_character(opened)  # type: ignore[arg-type]
        await outbox.flush_acknowledged()
    finally:
        await outbox.stop()
    assert [e.name for e in got.events] == ["character.created"]
    assert await _rows(lambda: unit_of_work(database, clock=clock)) == []


async def test_events_nobody_acknowledged_are_recovered_once_after_the_grace_period(
    database: Database, clock: FrozenClock, uow: UowFactory
) -> None:
    # The writer "died" after its commit: its bus never delivered, nobody acknowledged.
    cid = await _make_character(uow)
    bus = InProcessBus()
    got = Recorder(bus)
    cache = TagLog()
    relay = Outbox(uow, bus=bus, clock=clock, cache=cache)
    assert await relay.recover() == 0  # still within the writer's grace period
    clock.advance(OUTBOX_GRACE * 2)
    assert await relay.recover() == 1
    assert [(e.name, e.entity_id) for e in got.events] == [("character.created", cid)]
    assert f"character:{cid}" in cache.tags
    assert await _rows(uow) == []
    assert await relay.recover() == 0


async def test_racing_relays_deliver_each_event_once_in_all(
    database: Database, clock: FrozenClock, uow: UowFactory
) -> None:
    for n in range(12):
        await _make_character(uow, f"Racer{n}")
    clock.advance(OUTBOX_GRACE * 2)
    buses = [InProcessBus() for _ in range(3)]
    recorders = [Recorder(b) for b in buses]
    relays = [Outbox(uow, bus=b, clock=clock, cache=None) for b in buses]
    await asyncio.gather(*(r.recover() for r in relays))
    delivered = [e.id for rec in recorders for e in rec.events]
    assert len(delivered) == 12
    assert len(set(delivered)) == 12
    async with uow() as u:
        left = await u.session.scalar(select(func.count()).select_from(OutboxEvent))
    assert left == 0
