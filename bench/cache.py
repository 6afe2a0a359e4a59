"""Cache throughput and correctness on PostgreSQL + Redis (issue 4).

In one run, on a fresh migrated `vdm_bench_cache_<random>` database and a unique Redis prefix
(both removed at the end): gets/s through CacheService.read_through (L1 + Redis, the PG loader
behind it), the same loader straight from PostgreSQL, and raw redis-py GETs of the same bytes;
then a mixed read/write run through the character services that checks every read against the
last committed version, and 100 concurrent misses on one key. Last line: the JSON summary.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bench._pg import bench_database
from visualdm.access.principals import SystemActor
from visualdm.cache.factory import build_cache
from visualdm.cache.redis import connect
from visualdm.cache.service import CacheService
from visualdm.characters import repository as repo
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import SystemClock
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.errors import Conflict
from visualdm.ownership import Domain
from visualdm.settings import Settings

REDIS = os.environ.get("VDM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
ACTOR = SystemActor("bench")
CLOCK = SystemClock()


async def rate(op: Callable[[], Awaitable[object]], seconds: float, tasks: int) -> float:
    """Calls of `op` per second, run by `tasks` concurrent tasks for `seconds`."""
    count = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal count
        while time.perf_counter() < deadline:
            await op()
            count += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    return count / (time.perf_counter() - started)


def pg_loader(db: Database, cid: int) -> Callable[[], Awaitable[dict[str, Any] | None]]:
    """The loader a character read uses: one SELECT in its own session."""

    async def load() -> dict[str, Any] | None:
        async with db.sessions() as session:
            row = await repo.get(session, cid)
            return None if row is None else characters.to_read(row).model_dump(mode="json")

    return load


async def seed(db: Database, count: int) -> list[int]:
    async with unit_of_work(db, clock=CLOCK) as u:
        made = [
            await characters.create_character(
                u, actor=ACTOR, data=CharacterCreate(name=f"Hero {i}", race="elf")
            )
            for i in range(count)
        ]
    return [c.id for c in made]


async def throughput(
    db: Database,
    cache: CacheService,
    bare: CacheService,
    ids: list[int],
    seconds: float,
    tasks: int,
) -> dict[str, float]:
    """Cached (L1 + Redis), Redis-only, uncached PG and raw redis-py GET rates, same workload."""

    def cached_get(service: CacheService) -> Callable[[], Awaitable[object]]:
        def op() -> Awaitable[object]:
            cid = random.choice(ids)
            return service.read_through(
                Domain.CHARACTER, cid, pg_loader(db, cid), tags=characters.tags_of(cid)
            )

        return op

    for cid in ids:  # warm both layers, so the timed run measures hits
        await cache.read_through(Domain.CHARACTER, cid, pg_loader(db, cid))
    client = connect(REDIS)
    raw_key = f"{cache.keys.root}bench:raw"
    stored = await cache.backend.get(cache.keys.entity(Domain.CHARACTER, ids[0]))
    assert stored is not None
    await client.set(raw_key, stored.payload)
    try:
        return {
            "cached": await rate(cached_get(cache), seconds, tasks),
            "redis_only": await rate(cached_get(bare), seconds, tasks),
            "uncached": await rate(lambda: pg_loader(db, random.choice(ids))(), seconds, tasks),
            "raw_redis": await rate(lambda: client.get(raw_key), seconds, tasks),
        }
    finally:
        await client.aclose()


async def mixed(
    db: Database, writes_to: CacheService, reads_from: CacheService, ids: list[int], seconds: float
) -> dict[str, float]:
    """Writers grant XP, readers get characters; a read older than a finished commit is stale."""
    committed = dict.fromkeys(ids, 1)
    reads = stale = conflicts = writes = 0
    deadline = time.perf_counter() + seconds

    async def writer() -> None:
        nonlocal writes, conflicts
        while time.perf_counter() < deadline:
            cid = random.choice(ids)
            try:
                async with unit_of_work(db, clock=CLOCK, cache=writes_to) as u:
                    done = await characters.grant_xp(u, actor=ACTOR, character_id=cid, amount=1)
            except Conflict:
                conflicts += 1
                continue
            # The commit and its after-commit cache update are done once the block exits.
            committed[cid] = max(committed[cid], done.version)
            writes += 1

    async def reader() -> None:
        nonlocal reads, stale
        while time.perf_counter() < deadline:
            cid = random.choice(ids)
            floor = committed[cid]
            async with unit_of_work(db, clock=CLOCK, cache=reads_from) as u:
                got = await characters.get_character(u, actor=ACTOR, character_id=cid)
            reads += 1
            stale += got.version < floor

    await asyncio.gather(*(writer() for _ in range(4)), *(reader() for _ in range(12)))
    return {"reads": reads, "writes": writes, "stale": stale, "conflicts": conflicts}


async def stampede(db: Database, cache: CacheService, cid: int, readers: int) -> float:
    """DB loads caused by `readers` concurrent get_character calls on one uncached key."""
    await cache.invalidate_tags(characters.tags_of(cid))
    before = cache.metrics.value("loads", domain="character")

    async def read() -> None:
        async with unit_of_work(db, clock=CLOCK, cache=cache) as u:
            await characters.get_character(u, actor=ACTOR, character_id=cid)

    await asyncio.gather(*(read() for _ in range(readers)))
    return cache.metrics.value("loads", domain="character") - before


async def main(seconds: float, tasks: int, count: int) -> dict[str, object]:
    """Run every measurement and return the summary line."""
    prefix = f"vdmbench{uuid.uuid4().hex[:10]}"
    settings = Settings(redis_url=REDIS, redis_prefix=prefix)
    async with bench_database("cache", pool_size=20) as db:
        cache = build_cache(settings, clock=CLOCK)
        other = build_cache(settings, clock=CLOCK)  # a second API process sharing Redis
        bare = build_cache(settings, clock=CLOCK, local=False)
        for service in (cache, other, bare):
            await service.start()
        try:
            await asyncio.sleep(0.2)  # let the invalidation listeners subscribe
            ids = await seed(db, count)
            rates = await throughput(db, cache, bare, ids, seconds, tasks)
            hot = ids[:50]  # a small hot set so writers and readers collide
            local = await mixed(db, cache, cache, hot, seconds)
            remote = await mixed(db, cache, other, hot, seconds)
            loads = await stampede(db, cache, ids[-1], 100)
        finally:
            for service in (cache, other, bare):
                await service.close()
            client = connect(REDIS)
            async for key in client.scan_iter(match=f"{prefix}:*", count=500):
                await client.delete(key)
            await client.aclose()
    for name, value in rates.items():
        print(f"{name:>10}: {value:10.0f} gets/s")
    print(f"mixed, one process: {local}")
    print(f"mixed, reads in a second process (pub/sub lag allowed by spec 5.3): {remote}")
    return {
        "cached_get_per_s": round(rates["cached"]),
        "uncached_get_per_s": round(rates["uncached"]),
        "raw_redis_get_per_s": round(rates["raw_redis"]),
        "overhead_vs_raw_redis": round(rates["cached"] / rates["raw_redis"], 2),
        "redis_only_get_per_s": round(rates["redis_only"]),
        "stale_reads": local["stale"],
        "cross_process_stale_reads": remote["stale"],
        "mixed_reads": local["reads"] + remote["reads"],
        "mixed_writes": local["writes"] + remote["writes"],
        "db_loads_per_100_concurrent_misses": round(loads),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=16)
    parser.add_argument("--characters", type=int, default=1000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.seconds, args.tasks, args.characters))))
