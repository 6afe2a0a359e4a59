"""Crash safety of archival: kill -9 the job at random points, then finish it; nothing is lost."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import create_async_engine

from tests.conftest import EPOCH
from tests.support import databases
from visualdm.characters.models import Character
from visualdm.lifecycle.coldstore import ColdStore
from visualdm.lifecycle.models import ArchiveBatch, ArchivedRecord

ROWS = 300
# The job in a child process, with small batches so kills land between many of its steps.
CHILD = (
    "import sys, visualdm.ownership as o; o.LIFECYCLE_BATCH_SIZE = 30; "
    "from visualdm.cli.main import app; "
    "sys.argv = ['visualdm', 'maintain', '--job', 'archive', '--as-of', '2030-01-01']; app()"
)


def _batches(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as conn:
        return int(conn.execute("SELECT count(*) FROM archive_batches").fetchone()[0])


def _run(env: dict[str, str], kill_after: float | None, db: Path | None = None) -> int:
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE if kill_after is None else subprocess.DEVNULL,
    )
    if kill_after is None:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        return proc.returncode
    # Wait until the job is under way (it opened a new batch), then kill it a moment later.
    assert db is not None
    seen, deadline = _batches(db), time.monotonic() + 60
    while _batches(db) == seen and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.returncode


async def test_killing_the_archive_job_repeatedly_loses_nothing_and_duplicates_nothing(
    sqlite_template: Path, tmp_path: Path
) -> None:
    path = databases.copy_sqlite(sqlite_template, tmp_path)
    url = f"sqlite+aiosqlite:///{path}"
    engine = create_async_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                insert(Character),
                [
                    {
                        "name": f"c{i}",
                        "race": "elf",
                        "created_at": EPOCH,
                        "updated_at": EPOCH,
                        "last_active_at": EPOCH,
                    }
                    for i in range(ROWS)
                ],
            )
        env = {**os.environ, "VDM_DATABASE_URL": url, "VDM_DATA_DIR": str(tmp_path)}
        rng = random.Random(20260101)
        for _ in range(5):
            _run(env, kill_after=rng.uniform(0.0, 0.25), db=path)
        _run(env, kill_after=None)

        async with engine.connect() as conn:
            hot = set((await conn.scalars(select(Character.id))).all())
            cold = dict(
                (
                    await conn.execute(select(ArchivedRecord.record_id, ArchivedRecord.batch_id))
                ).all()
            )
            batches = (await conn.execute(select(ArchiveBatch))).all()
    finally:
        await engine.dispose()

    assert [b for b in batches if b.state == "abandoned"], "some kills interrupted a batch"
    assert hot == set(), "every inactive character was archived in the end"
    assert set(cold) == set(range(1, ROWS + 1)), "every row is in exactly one place"
    assert not [b for b in batches if b.state == "pending"]
    store = ColdStore(str(tmp_path / "archive"))
    manifest = store.read_manifest()
    assert manifest["totals"] == {"character": ROWS}
    done = {b.path: b for b in batches if b.state == "done"}
    assert {f["path"] for f in manifest["files"]} == set(done)
    for entry in manifest["files"]:
        assert store.verify(entry["path"], entry["sha256"]).count >= entry["rows"]
        ids = {r["id"] for r in store.read_records(entry["path"])}
        mine = {i for i, b in cold.items() if b == done[entry["path"]].id}
        assert mine <= ids
        assert len(mine) == entry["rows"]
    leftovers = [p for p in (tmp_path / "archive").rglob("*") if p.suffix == ".tmp"]
    abandoned = [b.path for b in batches if b.state == "abandoned"]
    assert leftovers == []
    assert not [p for p in abandoned if (tmp_path / "archive" / p).exists()]
