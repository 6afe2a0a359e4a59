"""The job runner: runs purge, archive and anonymize under a maintenance lock, and a scheduler.

Only one process runs maintenance at a time: a PostgreSQL advisory lock (held on a dedicated
connection) when the database is PostgreSQL, a flock on data_dir/.maintain.lock otherwise.
The runner is one of the three places that open units of work (the runtime's `uow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import structlog
from sqlalchemy import text

from visualdm.errors import Conflict
from visualdm.lifecycle.anonymize import anonymize
from visualdm.lifecycle.archive import archive, store_url
from visualdm.lifecycle.base import JobReport, Progress
from visualdm.lifecycle.coldstore import ColdStore
from visualdm.lifecycle.purge import purge
from visualdm.ownership import MAINTENANCE_INTERVAL
from visualdm.runtime import Runtime

log = structlog.get_logger(__name__)

JOBS = ("purge", "archive", "anonymize")
LOCK_KEY = 7425007
"""pg advisory lock key of maintenance runs (db/roles.py uses 7425001)."""


class MaintenanceBusy(Conflict):
    """Another process is running maintenance now."""


@asynccontextmanager
async def maintenance_lock(runtime: Runtime) -> AsyncIterator[bool]:
    """Hold the maintenance lock for the block; yields False (without waiting) if it is taken."""
    if runtime.db.dialect == "postgresql":
        async with runtime.db.engine.connect() as conn:
            got = bool(await conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": LOCK_KEY}))
            await conn.commit()
            try:
                yield got
            finally:
                if got:
                    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": LOCK_KEY})
                    await conn.commit()
        return
    path = runtime.settings.data_dir / ".maintain.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


async def run_jobs(
    runtime: Runtime,
    *,
    jobs: Sequence[str] = JOBS,
    now: datetime | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> list[JobReport]:
    """Run `jobs` in order at `now` (default: the runtime's clock); MaintenanceBusy if locked."""
    now = now or runtime.clock.now()
    reports: list[JobReport] = []
    async with maintenance_lock(runtime) as held:
        if not held:
            raise MaintenanceBusy("another process is running maintenance; try again later")
        for job in jobs:
            if job == "purge":
                reports.append(
                    await purge(runtime.uow, now=now, dry_run=dry_run, progress=progress)
                )
            elif job == "archive":
                store = ColdStore(store_url(runtime.settings))
                reports.append(
                    await archive(runtime.uow, store, now=now, dry_run=dry_run, progress=progress)
                )
            elif job == "anonymize":
                reports.append(
                    await anonymize(
                        runtime.uow,
                        now=now,
                        store=runtime.auth.store,
                        dry_run=dry_run,
                        progress=progress,
                    )
                )
            else:
                raise ValueError(f"unknown job {job!r}; known: {', '.join(JOBS)}")
    return reports


@dataclass
class SchedulerHandle:
    """A running scheduler; `await stop()` ends it (a run in progress is cancelled cleanly)."""

    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stop the scheduler and wait for it."""
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def _loop(runtime: Runtime, interval: float) -> None:
    while True:
        # Wait first: a process that lives less than an interval (a test, a crash loop) never
        # runs jobs, and restarts do not stampede.
        await asyncio.sleep(interval)
        try:
            reports = await run_jobs(runtime)
            log.info("maintenance done", **{r.job: r.counts for r in reports})
        except MaintenanceBusy:
            log.info("maintenance skipped: another process holds the lock")
        except Exception:
            log.exception("maintenance failed; retrying next interval")


def start_scheduler(runtime: Runtime, *, interval: float | None = None) -> SchedulerHandle:
    """Run the lifecycle jobs every MAINTENANCE_INTERVAL in this process (one process at a time)."""
    seconds = MAINTENANCE_INTERVAL.total_seconds() if interval is None else interval
    return SchedulerHandle(asyncio.create_task(_loop(runtime, seconds), name="vdm-maintenance"))
