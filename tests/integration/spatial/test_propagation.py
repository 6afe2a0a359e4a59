"""Snapshots (round trip, corruption refused) and the Redis stream bus (LWW replay, trimming)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis

from tests.support.services import REDIS_URL
from visualdm.errors import RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.events.redis_streams import START, RedisStreamBus
from visualdm.spatial import snapshot
from visualdm.spatial.index import Bounds, Placed
from visualdm.spatial.world import CHARACTER_MOVED, MOVED, World

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _entities() -> list[Placed]:
    return [
        Placed(f"entity:{i}", "house", i * 3.0, -i * 2.0, 2.0, 1.5, i % 2 == 0, T0)
        for i in range(1, 40)
    ]


def test_a_snapshot_round_trips_entities_and_stream_id(tmp_path: Path) -> None:
    path = tmp_path / "spatial.snapshot"
    snap = snapshot.Snapshot(_entities(), "1700000000000-3")
    snapshot.write(path, snap)
    assert snapshot.read(path) == snap
    assert [p.name for p in tmp_path.iterdir()] == ["spatial.snapshot"]
    world = World(Bounds(-1000, -1000, 1000, 1000))
    world.load(snapshot.read(path).entities)
    assert world.index.snapshot() == sorted(snap.entities, key=lambda e: e.key)


@pytest.mark.parametrize(
    "damage",
    [
        lambda b: b[:-10],
        lambda b: b.replace(b'"house"', b'"hovel"', 1),
        lambda b: b"garbage\n" + b,
        lambda b: b"",
    ],
)
def test_a_damaged_snapshot_is_refused(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "s"
    snapshot.write(path, snapshot.Snapshot(_entities(), None))
    path.write_bytes(damage(path.read_bytes()))  # type: ignore[operator]
    with pytest.raises(snapshot.CorruptSnapshot):
        snapshot.read(path)
    assert issubclass(snapshot.CorruptSnapshot, RuleViolation)


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


def _bus(redis: Redis, stream: str, **kw: int) -> RedisStreamBus:
    return RedisStreamBus(
        redis,
        stream,
        maxlen=kw.get("maxlen", 10_000),
        block_ms=50,
        batch=kw.get("batch", 500),
    )


def _move(key_id: int, x: float, s: int) -> DomainEvent:
    e = Placed(f"entity:{key_id}", "npc", x, 0.0, 1.0, 1.0, False, T0 + timedelta(seconds=s))
    return DomainEvent(MOVED, "world_entity", key_id, T0, {"entity": e.to_json()})


async def test_a_consumer_applies_other_processes_events_with_last_writer_wins(
    redis: Redis,
) -> None:
    stream = f"vdm-test:{uuid.uuid4().hex}"
    try:
        a, b = _bus(redis, stream), _bus(redis, stream)
        world = World(Bounds(-100, -100, 100, 100))

        async def apply(event: DomainEvent) -> None:
            world.apply(event)

        b.subscribe("world.", b_handler := apply)
        b.subscribe("character.", b_handler)
        a.subscribe("world.", apply)  # a never sees its own events
        await a.publish([_move(1, 5.0, 2), _move(1, 9.0, 1), _move(2, 1.0, 0)])
        moved = DomainEvent(
            CHARACTER_MOVED, "character", 3, T0, {"x": 1, "y": 2, "at": T0.isoformat()}
        )
        await a.publish([moved])
        assert await a.read_once(10) == 4
        assert world.index.get("entity:1") is None
        assert await b.read_once(10) == 4
        one = world.index.get("entity:1")
        assert one is not None
        assert one.x == 5.0
        assert world.index.get("character:3") is not None
        assert b.last_id == await a.latest_id()
    finally:
        await redis.delete(stream)


async def test_trimming_past_a_snapshot_is_detected(redis: Redis) -> None:
    stream = f"vdm-test:{uuid.uuid4().hex}"
    try:
        bus = _bus(redis, stream, maxlen=1)
        assert not await bus.trimmed_after(START)
        await bus.publish([_move(1, float(i), i) for i in range(300)])
        last = await bus.latest_id()
        assert await bus.trimmed_after(START)
        assert not await bus.trimmed_after(last)
    finally:
        await redis.delete(stream)
