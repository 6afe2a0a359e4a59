"""Start-up of the spatial world: a bulk rebuild equals one-by-one inserts, the snapshot is
written on stop and periodically, and a start loads it and replays the stream after it."""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio import Redis

from tests.conftest import UowFactory
from tests.support.services import REDIS_URL
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.errors import RuleViolation
from visualdm.events.bus import DomainEvent
from visualdm.events.redis_streams import RedisStreamBus
from visualdm.runtime import Runtime, build_runtime
from visualdm.settings import Settings
from visualdm.spatial import service as spatial_service
from visualdm.spatial import snapshot
from visualdm.spatial import sync as spatial_sync
from visualdm.spatial.columns import Columns
from visualdm.spatial.index import Bounds, Placed, SpatialIndex
from visualdm.spatial.models import WorldEntity
from visualdm.spatial.world import MOVED, World

T0 = datetime(2026, 1, 1, tzinfo=UTC)
BOUNDS = Bounds(-1000, -1000, 1000, 1000)

coordinate = st.floats(-900, 900, allow_nan=False)
side = st.floats(0.5, 50, allow_nan=False)
entity = st.builds(
    lambda i, kind, x, y, w, h, solid, s: Placed(
        f"entity:{i}", kind, x, y, w, h, solid, T0 + timedelta(microseconds=s)
    ),
    st.integers(1, 60),
    st.sampled_from(["house", "tree", "npc"]),
    coordinate,
    coordinate,
    side,
    side,
    st.booleans(),
    st.integers(0, 10**12),
)


def _same(bulk: SpatialIndex, single: SpatialIndex, x: float, y: float) -> None:
    assert bulk.snapshot() == single.snapshot()
    box = (x - 100, y - 100, x + 100, y + 100)
    assert {e.key for e in bulk.window(box)} == {e.key for e in single.window(box)}
    assert {e.key for e in bulk.within(x, y, 150)} == {e.key for e in single.within(x, y, 150)}
    # kNN ties may come in another order from another tree shape; the distances may not.
    near_bulk = [round(abs(e.x - x) + abs(e.y - y), 9) for e in bulk.nearest(x, y, 5)]
    near_single = [round(abs(e.x - x) + abs(e.y - y), 9) for e in single.nearest(x, y, 5)]
    assert sorted(near_bulk) == sorted(near_single)


@given(st.lists(entity, max_size=80), coordinate, coordinate)
def test_a_bulk_load_from_columns_equals_one_by_one_inserts(
    entities: list[Placed], x: float, y: float
) -> None:
    bulk, single = SpatialIndex(BOUNDS), SpatialIndex(BOUNDS)
    bulk.load_columns(Columns.of_placed(entities))
    last = {e.key: e for e in entities}  # a key given twice: the last one is kept
    for e in last.values():
        single.upsert(e)
    _same(bulk, single, x, y)
    bulk._tree._check_invariants()


@given(st.lists(entity, max_size=40))
def test_columns_survive_a_snapshot_round_trip(entities: list[Placed]) -> None:
    snap = snapshot.Snapshot(entities, "1-0")
    assert snapshot.decode(snapshot.encode(snap)).entities == entities


def test_a_refused_row_fails_the_columns_load_as_a_single_insert_would() -> None:
    index = SpatialIndex(BOUNDS)
    outside = Placed("entity:1", "house", 999.0, 0.0, 10.0, 10.0, True, T0)
    with pytest.raises(RuleViolation) as bulk_error:
        index.load_columns(Columns.of_placed([outside]))
    with pytest.raises(RuleViolation) as single_error:
        index.upsert(outside)
    assert str(bulk_error.value) == str(single_error.value)
    assert len(index) == 0


def test_a_version_1_snapshot_is_still_read(tmp_path: Path) -> None:
    entities = [Placed("entity:1", "house", 1.0, 2.0, 3.0, 4.0, True, T0)]
    body = orjson.dumps(
        {
            "format": "visualdm.spatial/1",
            "stream_id": "5-0",
            "entities": [e.to_json() for e in entities],
        }
    )
    header = f"VDMSPATIAL1 sha256={hashlib.sha256(body).hexdigest()} bytes={len(body)}\n"
    (tmp_path / "old").write_bytes(header.encode() + body)
    read = snapshot.read(tmp_path / "old")
    assert (read.entities, read.stream_id) == (entities, "5-0")


async def test_a_rebuild_from_the_database_equals_one_by_one_inserts(
    uow: UowFactory, clock: FrozenClock
) -> None:
    rows = [
        WorldEntity(
            kind=("house", "tree")[i % 2],
            name="",
            x=float(i * 7 % 1800 - 900),
            y=float(i * 13 % 1800 - 900),
            width=2.0,
            height=3.0,
            is_solid=i % 3 == 0,
            position_updated_at=T0 + timedelta(seconds=i),
            created_at=T0,
            updated_at=T0,
        )
        for i in range(500)
    ]
    rows.append(
        WorldEntity(
            kind="house",
            name="",
            x=5000.0,
            y=0.0,
            width=1.0,
            height=1.0,
            is_solid=True,
            position_updated_at=T0,
            created_at=T0,
            updated_at=T0,
        )
    )
    async with uow() as u:
        u.session.add_all(rows)
        await u.session.flush()
        ids = [r.id for r in rows]
    world = World(BOUNDS)
    async with uow() as u:
        report = await spatial_service.rebuild(u, world, actor=spatial_sync.SYSTEM)
    assert report.entities == 500
    assert report.skipped.keys() == {f"entity:{ids[-1]}"}
    single = SpatialIndex(BOUNDS)
    for row in rows[:-1]:
        single.upsert(spatial_service.placed_of(row))
    _same(world.index, single, 0.0, 0.0)


# --- the snapshot file of a running process (PostgreSQL or SQLite, and real Redis) ---------


@pytest.fixture
async def runtimes(
    database: Database, clock: FrozenClock, tmp_path: Path
) -> AsyncIterator[Callable[[], Runtime]]:
    """Runtimes sharing the database, a Redis prefix and a data directory (as restarts do)."""
    prefix = f"vdmtest_{uuid.uuid4().hex[:12]}"
    built: list[Runtime] = []

    def make() -> Runtime:
        settings = Settings(
            jwt_secret="test-secret-" + "x" * 40,
            redis_url=REDIS_URL,
            redis_prefix=prefix,
            data_dir=tmp_path,
            world_min_x=BOUNDS.min_x,
            world_min_y=BOUNDS.min_y,
            world_max_x=BOUNDS.max_x,
            world_max_y=BOUNDS.max_y,
        )
        runtime = build_runtime(settings, clock=clock, db=database)
        built.append(runtime)
        return runtime

    yield make
    for runtime in built:
        await spatial_sync.stop(runtime)
        if runtime.cache is not None:
            await runtime.cache.close()
        if runtime.redis is not None:
            await runtime.redis.aclose()
    redis = Redis.from_url(REDIS_URL)
    keys = [k async for k in redis.scan_iter(match=f"{prefix}:*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def _moved(key_id: int, x: float, seconds: int) -> DomainEvent:
    e = Placed(f"entity:{key_id}", "npc", x, 0.0, 1.0, 1.0, False, T0 + timedelta(seconds=seconds))
    return DomainEvent(MOVED, "world_entity", key_id, T0, {"entity": e.to_json()})


async def test_a_started_world_writes_its_snapshot_when_it_stops(
    runtimes: Callable[[], Runtime],
) -> None:
    runtime = runtimes()
    sync = spatial_sync.spatial_of(runtime)
    world = await sync.ensure_started()
    world.apply(_moved(1, 5.0, 1))
    assert not sync.snapshot_path.exists()
    await sync.stop()
    written = snapshot.read(sync.snapshot_path)
    assert [e.key for e in written.entities] == ["entity:1"]
    assert sync.stream is not None
    assert written.stream_id == sync.stream.last_id


async def test_a_running_world_writes_its_snapshot_periodically(
    runtimes: Callable[[], Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spatial_sync, "SPATIAL_SNAPSHOT_INTERVAL", timedelta(milliseconds=10))
    sync = spatial_sync.spatial_of(runtimes())
    world = await sync.ensure_started(background=True)
    world.apply(_moved(1, 5.0, 1))
    for _ in range(500):
        if sync.snapshot_path.exists():
            break
        await asyncio.sleep(0.01)
    assert [e.key for e in snapshot.read(sync.snapshot_path).entities] == ["entity:1"]
    world.apply(_moved(2, 7.0, 1))
    for _ in range(500):
        if len(snapshot.read(sync.snapshot_path).columns) == 2:
            break
        await asyncio.sleep(0.01)
    assert len(snapshot.read(sync.snapshot_path).columns) == 2


async def test_a_start_loads_the_snapshot_then_replays_the_stream_after_it(
    runtimes: Callable[[], Runtime],
) -> None:
    first = spatial_sync.spatial_of(runtimes())
    world = await first.ensure_started()
    world.apply(_moved(1, 5.0, 1))  # in the index only: a rebuild from the database loses it
    await first.stop()
    assert first.stream is not None
    other = RedisStreamBus(
        Redis.from_url(REDIS_URL), first.stream.stream, maxlen=10_000, block_ms=50, batch=100
    )
    try:
        await other.publish([_moved(2, 9.0, 2), _moved(1, 6.0, 3)])  # another process, later
    finally:
        await other.redis.aclose()
    second = spatial_sync.spatial_of(runtimes())
    restarted = await second.ensure_started()
    for _ in range(500):
        two = restarted.index.get("entity:2")
        if two is not None:
            break
        await asyncio.sleep(0.01)
    one, two = restarted.index.get("entity:1"), restarted.index.get("entity:2")
    assert one is not None
    assert two is not None
    assert (one.x, two.x) == (6.0, 9.0)
