"""The write path on PostgreSQL: service writes against raw asyncpg UPDATEs of the same rows.

Each of `--writers` writers owns one character. In the same run it measures raw asyncpg
`UPDATE characters SET x, y WHERE id` (autocommit), `characters.service.update_character` and
`characters.service.set_position` (each in its own unit of work, with audit and events), the
same patch workload run by two processes at once, and the 1-writer latency. Every patch sets
the writer's own counter into `gold`; afterwards the stored gold must equal the last value each
writer saw acknowledged, or the update was lost. The last line is the result as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

import asyncpg
from sqlalchemy import select
from sqlalchemy.engine import make_url

from bench._pg import bench_database
from visualdm.access.principals import SystemActor, UserActor
from visualdm.characters import service as characters
from visualdm.characters.models import Character
from visualdm.characters.schemas import CharacterCreate, CharacterUpdate
from visualdm.clock import SystemClock
from visualdm.db.engine import Database, create_database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.events.bus import InProcessBus
from visualdm.ownership import Role
from visualdm.settings import Settings
from visualdm.users.schemas import UserCreate
from visualdm.users.service import create_user


@dataclass
class Run:
    """What one timed workload did."""

    done: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    acknowledged: dict[int, int] = field(default_factory=dict)

    @property
    def per_s(self) -> float:
        """Operations per second."""
        return self.done / self.seconds if self.seconds else 0.0


async def _seed(db: Database, count: int) -> tuple[UserActor, list[int]]:
    clock = SystemClock()
    async with unit_of_work(db, clock=clock) as u:
        gm = await create_user(
            u,
            actor=SystemActor("bench"),
            data=UserCreate(username="benchgm", password="bench-password-1"),
            roles=[Role.GM],
        )
    actor = UserActor(gm.id, frozenset({Role.GM}))
    ids = []
    async with unit_of_work(db, clock=clock) as u:
        for n in range(count):
            made = await characters.create_character(
                u, actor=actor, data=CharacterCreate(name=f"Writer {n}", race="human")
            )
            ids.append(made.id)
    return actor, ids


async def _timed(ids: list[int], seconds: float, op: object) -> Run:
    run = Run()
    deadline = time.perf_counter() + seconds

    async def writer(cid: int) -> None:
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            t0 = time.perf_counter()
            await op(cid, n)  # type: ignore[operator]
            run.latencies.append(time.perf_counter() - t0)
            run.acknowledged[cid] = n
            run.done += 1

    started = time.perf_counter()
    await asyncio.gather(*(writer(cid) for cid in ids))
    run.seconds = time.perf_counter() - started
    return run


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def raw_updates(url: str, ids: list[int], seconds: float) -> Run:
    """Raw asyncpg autocommit UPDATEs of x, y, one connection per writer."""
    pool = await asyncpg.create_pool(_dsn(url), min_size=len(ids), max_size=len(ids))
    try:

        async def op(cid: int, n: int) -> None:
            async with pool.acquire() as conn:
                await conn.execute(
                    "UPDATE characters SET x = $1, y = $2 WHERE id = $3", float(n), 1.0, cid
                )

        return await _timed(ids, seconds, op)
    finally:
        await pool.close()


async def service_patches(db: Database, actor: UserActor, ids: list[int], seconds: float) -> Run:
    """update_character in its own unit of work, audited, with events."""
    clock, bus = SystemClock(), InProcessBus()

    async def op(cid: int, n: int) -> None:
        async with unit_of_work(db, clock=clock, bus=bus) as u:
            await characters.update_character(
                u, actor=actor, character_id=cid, changes=CharacterUpdate(gold=n)
            )

    return await _timed(ids, seconds, op)


async def service_moves(db: Database, actor: UserActor, ids: list[int], seconds: float) -> Run:
    """set_position in its own unit of work, audited, with events."""
    clock, bus = SystemClock(), InProcessBus()

    async def op(cid: int, n: int) -> None:
        async with unit_of_work(db, clock=clock, bus=bus) as u:
            await characters.set_position(u, actor=actor, character_id=cid, x=float(n), y=2.0)

    return await _timed(ids, seconds, op)


async def lost_updates(db: Database, run: Run) -> int:
    """How many writers' last acknowledged gold is not what the database holds."""
    async with db.engine.connect() as conn:
        rows = (await conn.execute(select(Character.id, Character.gold))).all()
    stored = dict(rows)
    return sum(1 for cid, n in run.acknowledged.items() if stored.get(cid) != n)


async def child(url: str, first: int, count: int, seconds: float, start_at: float) -> None:
    """One process of the two-process run: patch `count` characters from id `first`."""
    db = create_database(Settings(database_url=url, db_pool_size=count))
    try:
        ids = list(range(first, first + count))
        async with db.engine.connect() as conn:
            gm = await conn.scalar(select(Character.owner_id).where(Character.id == first))
        actor = UserActor(int(gm or 0), frozenset({Role.GM}))
        await asyncio.sleep(max(0.0, start_at - time.time()))
        run = await service_patches(db, actor, ids, seconds)
        lost = await lost_updates(db, run)
        print(json.dumps({"done": run.done, "seconds": run.seconds, "lost": lost}))
    finally:
        await db.dispose()


def two_processes(url: str, ids: list[int], seconds: float) -> tuple[float, int]:
    """Two processes each patch their own half of `ids` at once; returns the summed rate."""
    half = len(ids) // 2
    start_at = time.time() + 2.0
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.writes",
                "--child",
                url,
                str(first),
                str(half if i == 0 else len(ids) - half),
                str(seconds),
                str(start_at),
            ],
            stdout=subprocess.PIPE,
        )
        for i, first in enumerate((ids[0], ids[half]))
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=seconds + 120)
        results.append(json.loads(out.decode().strip().splitlines()[-1]))
    total = sum(r["done"] / r["seconds"] for r in results)
    return total, sum(r["lost"] for r in results)


async def main(writers: int, seconds: float) -> dict[str, object]:
    """Run every workload on one throwaway database and return the result line."""
    async with bench_database("writes", pool_size=writers * 2) as db:
        url = db.engine.url.render_as_string(hide_password=False)
        actor, ids = await _seed(db, writers * 3)
        own, spare = ids[:writers], ids[writers:]
        raw = await raw_updates(url, own, seconds)
        print(f"raw asyncpg UPDATE: {raw.per_s:,.0f}/s")
        patch = await service_patches(db, actor, own, seconds)
        lost = await lost_updates(db, patch)
        print(f"update_character: {patch.per_s:,.0f}/s, lost {lost}")
        move = await service_moves(db, actor, own, seconds)
        print(f"set_position: {move.per_s:,.0f}/s")
        single = await service_patches(db, actor, own[:1], min(seconds, 3.0))
        single_ms = statistics.median(single.latencies) * 1000
        print(f"1 writer: {single.per_s:,.0f}/s, median {single_ms:.2f} ms")
        two, lost_two = two_processes(url, spare, seconds)
        print(f"two processes: {two:,.0f}/s, lost {lost_two}")
        raw2 = await raw_updates(url, own, seconds)
        raw_rate = (raw.per_s + raw2.per_s) / 2
    return {
        "writers": writers,
        "raw_update_per_s": round(raw_rate, 1),
        "patch_per_s": round(patch.per_s, 1),
        "move_per_s": round(move.per_s, 1),
        "patch_ratio": round(patch.per_s / raw_rate, 3),
        "move_ratio": round(move.per_s / raw_rate, 3),
        "two_process_patch_per_s": round(two, 1),
        "two_process_gain": round(two / patch.per_s, 2) if patch.per_s else 0.0,
        "single_writer_ms": round(single_ms, 2),
        "lost_updates": lost + lost_two,
    }


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, url, first, count, secs, start = sys.argv
        asyncio.run(child(url, int(first), int(count), float(secs), float(start)))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=8.0)
    args = parser.parse_args()
    result = asyncio.run(main(args.writers, args.seconds))
    print(json.dumps(result))
    if result["lost_updates"]:
        sys.exit(1)
