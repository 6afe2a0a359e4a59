"""Two processes sharing Redis converge: 10,000 moves in one are applied in the other within 1 s.

Each process is a real subprocess running the production stream bus and a spatial world. Both
also write the same entity with interleaved timestamps: both must end with the newest write.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid

import pytest
from redis import Redis

from tests.support.services import REDIS_URL

UPDATES = 10_000
SHARED = 50  # writes of each process to the one entity both move

DRIVER = r"""
import asyncio, hashlib, json, sys, time
from datetime import UTC, datetime, timedelta
from redis.asyncio import Redis
from visualdm.events.bus import DomainEvent
from visualdm.events.redis_streams import RedisStreamBus
from visualdm.spatial.index import Bounds, Placed
from visualdm.spatial.world import MOVED, World

role, url, stream = sys.argv[1:4]
updates, shared = int(sys.argv[4]), int(sys.argv[5])
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def move(key, x, s):
    e = Placed(key, "npc", x, 0.0, 1.0, 1.0, False, T0 + timedelta(milliseconds=s))
    return DomainEvent(MOVED, "world_entity", key, T0, {"entity": e.to_json()})


async def main():
    redis = Redis.from_url(url)
    bus = RedisStreamBus(redis, stream, maxlen=100_000, block_ms=200, batch=1000)
    world = World(Bounds(-1e6, -1e6, 1e6, 1e6))
    seen = 0

    async def apply(events):
        nonlocal seen
        world.apply_many(events)
        seen += len(events)

    bus.subscribe_batch(("world.",), apply)
    bus.start("0-0")
    print("ready", flush=True)
    while not await redis.exists(stream + ":go"):
        await asyncio.sleep(0.01)
    mine = []
    if role == "writer":
        # 10,000 moves of 500 entities; every 200th batch slot also writes the shared entity.
        for i in range(updates - shared):
            mine.append(move(f"entity:{i % 500 + 1}", float(i % 1000), i))
        shared_events = [move("entity:0", 1000.0 + k, 2 * k) for k in range(shared)]
        step = len(mine) // shared
        for k, ev in enumerate(shared_events):
            mine.insert(k * (step + 1), ev)
        expect = shared
    else:
        mine = [move("entity:0", -1000.0 - k, 2 * k + 1) for k in range(shared)]
        expect = updates
    started = time.time()
    for b in range(0, len(mine), 50):
        batch = mine[b : b + 50]
        for ev in batch:
            world.apply(ev)
        await bus.publish(batch)
        await asyncio.sleep(0.01 if role == "writer" else 0.2)
    published = time.time()
    deadline = time.time() + 30
    while seen < expect and time.time() < deadline:
        await asyncio.sleep(0.005)
    done = time.time()
    await bus.stop()
    lags = sorted(bus.lag_seconds)
    digest = hashlib.sha256(
        json.dumps([e.to_json() for e in world.index.snapshot()]).encode()
    ).hexdigest()
    shared_now = world.index.get("entity:0")
    print(json.dumps({
        "role": role,
        "seen": seen,
        "expected": expect,
        "p50": lags[len(lags) // 2] if lags else None,
        "p99": lags[min(len(lags) - 1, int(len(lags) * 0.99))] if lags else None,
        "max": lags[-1] if lags else None,
        "publish_seconds": published - started,
        "published_at": published,
        "caught_up_at": done,
        "digest": digest,
        "shared_x": shared_now.x if shared_now else None,
        "entities": len(world.index),
    }), flush=True)
    await redis.aclose()

asyncio.run(main())
"""


@pytest.mark.slow
def test_two_processes_converge_within_one_second_with_last_writer_wins() -> None:
    stream = f"vdm-e2e:{uuid.uuid4().hex}"
    redis = Redis.from_url(REDIS_URL)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, role, REDIS_URL, stream, str(UPDATES), str(SHARED)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for role in ("writer", "reader")
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            assert p.stdout.readline().strip() == "ready"
        redis.set(stream + ":go", 1)
        start = time.time()
        results = {}
        for p in procs:
            out, err = p.communicate(timeout=90)
            assert p.returncode == 0, err
            line = json.loads(out.strip().splitlines()[-1])
            results[line["role"]] = line
        elapsed = time.time() - start
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        redis.delete(stream, stream + ":go")
        redis.close()
    writer, reader = results["writer"], results["reader"]
    print(f"\nconvergence: {json.dumps(results, indent=1)}\nelapsed {elapsed:.1f}s")
    assert reader["seen"] == UPDATES
    assert writer["seen"] == SHARED
    assert reader["p99"] < 1.0
    assert reader["max"] < 1.0
    # Every update was applied in the reader within 1 s of the writer's last publish.
    assert reader["caught_up_at"] - writer["published_at"] < 1.0
    assert reader["digest"] == writer["digest"]
    # The newest write to the shared entity is the reader's last (at 2 * 49 + 1 ms).
    assert reader["shared_x"] == writer["shared_x"] == -1000.0 - (SHARED - 1)
