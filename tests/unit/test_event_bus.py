"""The in-process bus delivers each event id once (the outbox delivers at least once)."""

from __future__ import annotations

from datetime import UTC, datetime

from visualdm.events.bus import DomainEvent, InProcessBus, SeenIds

AT = datetime(2026, 1, 1, tzinfo=UTC)


async def test_an_event_delivered_twice_reaches_handlers_once() -> None:
    bus = InProcessBus()
    got: list[DomainEvent] = []

    async def handle(event: DomainEvent) -> None:
        got.append(event)

    bus.subscribe("", handle)
    event = DomainEvent("character.moved", "character", 1, AT, {"x": 1})
    await bus.publish([event])
    await bus.publish([event])
    await bus.publish([DomainEvent("character.moved", "character", 1, AT, {"x": 1})])
    assert len(got) == 2  # the third is a different event that happens to look the same
    assert got[0].id != got[1].id


def test_seen_ids_forget_the_oldest_beyond_their_capacity() -> None:
    seen = SeenIds(capacity=2)
    assert [seen.first_time(i) for i in ("a", "b", "a")] == [True, True, False]
    assert seen.first_time("c")
    assert seen.first_time("a")  # "a" was the oldest and was forgotten
    assert not seen.first_time("c")
