"""Lifecycle jobs on PostgreSQL: purge and archive rates against a raw SQL DELETE, memory flat.

Runs in its own fresh database (bench/_pg.py). Inserts --rows characters with COPY as the login
role three times: soft-deleted long ago (purged by the job, then by one raw DELETE statement for
comparison) and inactive for years (archived to a temporary directory). The last line is JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from bench._pg import bench_database
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.lifecycle.archive import archive
from visualdm.lifecycle.coldstore import ColdStore
from visualdm.lifecycle.purge import TARGETS, purge

NOW = datetime(2030, 1, 1, tzinfo=UTC)
LONG_AGO = NOW - timedelta(days=800)
COLUMNS: tuple[str, ...] = ("name", "race", "background", "character_class", "inventory", "derived")
COLUMNS += ("created_at", "updated_at", "last_active_at", "deleted_at", "version")
COLUMNS += ("level", "xp", "gold", "strength", "dexterity", "constitution", "intelligence")
COLUMNS += ("wisdom", "charisma", "max_hp", "hp", "armor_class", "speed")


def _records(n: int, *, deleted: bool) -> Iterator[tuple[Any, ...]]:
    gone = LONG_AGO if deleted else None
    for i in range(n):
        yield (f"c{i}", "elf", "", "", "[]", "{}", LONG_AGO, LONG_AGO, LONG_AGO, gone, 1)


async def _copy(db: Database, n: int, *, deleted: bool) -> None:
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver: Any = raw.driver_connection
        chunk = 50_000
        for start in range(0, n, chunk):
            rows = [
                (*r, 1, 0, 0, 10, 10, 10, 10, 10, 10, 10, 10, 10, 30)
                for r in _records(min(chunk, n - start), deleted=deleted)
            ]
            await driver.copy_records_to_table("characters", records=rows, columns=COLUMNS)
        await conn.commit()
        await conn.execute(text("ANALYZE characters"))
        await conn.commit()


async def main(rows: int) -> dict[str, float | int]:
    async with bench_database("lifecycle") as db:
        clock = FrozenClock(NOW)

        def open_uow() -> Any:
            return unit_of_work(db, clock=clock)

        await _copy(db, rows, deleted=True)
        started = time.perf_counter()
        report = await purge(open_uow, now=NOW, targets=TARGETS[:1])
        purge_rate = report.counts["character"] / (time.perf_counter() - started)
        assert report.counts["character"] == rows

        await _copy(db, rows, deleted=True)
        async with db.engine.begin() as conn:
            started = time.perf_counter()
            result = await conn.execute(
                text("DELETE FROM characters WHERE deleted_at < :t"),
                {"t": NOW - timedelta(days=30)},
            )
        raw_rate = result.rowcount / (time.perf_counter() - started)

        await _copy(db, rows, deleted=False)
        with tempfile.TemporaryDirectory() as tmp:
            started = time.perf_counter()
            report = await archive(open_uow, ColdStore(tmp), now=NOW)
            archive_rate = report.counts["character"] / (time.perf_counter() - started)
        assert report.counts["character"] == rows
    return {
        "rows": rows,
        "purge_rows_per_s": round(purge_rate),
        "archive_rows_per_s": round(archive_rate),
        "raw_sql_delete_rows_per_s": round(raw_rate),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.rows))))
