"""Optimistic locking under contention (issue 3): 32 writers each grant +1 XP 100 times.

Every grant goes through characters.service.grant_xp in its own unit of work on PostgreSQL.
A grant that still conflicts after the registry's retry limit fails loudly (counted); none may
be lost: the final XP must equal the number of grants that reported success.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from bench._pg import bench_database
from visualdm.access.principals import SystemActor
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import SystemClock
from visualdm.db.unit_of_work import unit_of_work
from visualdm.errors import VersionConflict
from visualdm.events.bus import InProcessBus

ACTOR = SystemActor("bench")


async def main(writers: int, grants: int) -> dict[str, object]:
    """Run the contention workload and return the result line."""
    async with bench_database("concurrency", pool_size=writers) as db:
        clock, bus = SystemClock(), InProcessBus()
        async with unit_of_work(db, clock=clock, bus=bus) as u:
            made = await characters.create_character(
                u, actor=ACTOR, data=CharacterCreate(name="Contended", race="human")
            )
        succeeded = conflicted = 0

        async def writer() -> None:
            nonlocal succeeded, conflicted
            for _ in range(grants):
                try:
                    async with unit_of_work(db, clock=clock, bus=bus) as u:
                        await characters.grant_xp(u, actor=ACTOR, character_id=made.id, amount=1)
                    succeeded += 1
                except VersionConflict:
                    conflicted += 1

        started = time.perf_counter()
        await asyncio.gather(*(writer() for _ in range(writers)))
        elapsed = time.perf_counter() - started
        async with unit_of_work(db, clock=clock, bus=bus) as u:
            final = await characters.get_character(u, actor=ACTOR, character_id=made.id)
    attempted = writers * grants
    print(f"{attempted} grants by {writers} writers in {elapsed:.2f} s")
    print(f"succeeded {succeeded}, conflicted after retries {conflicted}, final xp {final.xp}")
    return {
        "writers": writers,
        "attempted": attempted,
        "succeeded": succeeded,
        "conflicted": conflicted,
        "final_xp": final.xp,
        "lost_updates": max(0, succeeded - final.xp),
        "ops_per_s": round(attempted / elapsed, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--writers", type=int, default=32)
    parser.add_argument("--grants", type=int, default=100)
    args = parser.parse_args()
    result = asyncio.run(main(args.writers, args.grants))
    print(json.dumps(result))
