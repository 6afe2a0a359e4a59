"""Keeps this process's spatial world in step: start-up load, local events, the Redis stream.

At start the world loads the latest snapshot (else rebuilds from the database in bulk) and replays
the stream from the snapshot's stream id; if entries after it were trimmed, it rebuilds instead.
A started world writes its snapshot periodically and when it stops (ADR 0009).
Committed local changes (character moves, world entity changes) are forwarded to the stream;
other processes' entries are applied with last-writer-wins (spec 3.3, 5.1, 5.3).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import structlog
from redis.asyncio import Redis

from visualdm.access.principals import SystemActor
from visualdm.events.bus import DomainEvent
from visualdm.events.redis_streams import RedisStreamBus
from visualdm.ownership import (
    SPATIAL_SNAPSHOT_INTERVAL,
    SPATIAL_STREAM_BATCH,
    SPATIAL_STREAM_BLOCK,
    SPATIAL_STREAM_MAXLEN,
)
from visualdm.runtime import Runtime
from visualdm.spatial import service, snapshot
from visualdm.spatial.columns import Columns
from visualdm.spatial.world import (
    CHARACTER_DELETED,
    CHARACTER_MOVED,
    CHARACTER_RESTORED,
    PREFIXES,
    World,
    bounds_of,
)

log = structlog.get_logger(__name__)
SYSTEM = SystemActor("spatial-sync")
_KEY = "spatial"


class SpatialSync:
    """The world of one runtime, and the tasks that keep it converged with the others."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.world = World(bounds_of(runtime.settings))
        self.stream: RedisStreamBus | None = None
        if runtime.settings.redis_url:
            # A client of its own: blocking XREADs must not hold the cache's short-timeout pool.
            client = Redis.from_url(runtime.settings.redis_url)
            self.stream = RedisStreamBus(
                client,
                f"{runtime.settings.redis_prefix}:v1:spatial:changes",
                maxlen=SPATIAL_STREAM_MAXLEN,
                block_ms=int(SPATIAL_STREAM_BLOCK.total_seconds() * 1000),
                batch=SPATIAL_STREAM_BATCH,
            )
            self.stream.subscribe_batch(PREFIXES, self._remote)
        self.snapshot_path = Path(runtime.settings.data_dir) / snapshot.FILE_NAME
        self._started = False
        self._lock = asyncio.Lock()
        self._snapshots: asyncio.Task[None] | None = None
        self._written = -1  # world.changes when the snapshot file was last written

    async def ensure_started(self, *, background: bool = False) -> World:
        """Load the world and start following changes (once); returns the world."""
        if self._started and (not background or self._snapshots is not None):
            return self.world  # the path of every request once started: no lock to take
        async with self._lock:
            if not self._started:
                await self._load()
                for prefix in PREFIXES:
                    self.runtime.bus.subscribe(prefix, self._local)
                if self.stream is not None:
                    self.stream.start()
                self._started = True
            if background and self._snapshots is None:
                self._snapshots = asyncio.create_task(self._snapshot_loop())
        return self.world

    async def _load(self) -> None:
        mark = await self.stream.latest_id() if self.stream else None
        try:
            snap = snapshot.read(self.snapshot_path)
        except FileNotFoundError:
            snap = None
        except snapshot.CorruptSnapshot as exc:
            log.warning("spatial snapshot refused; rebuilding", error=exc.message)
            snap = None
        if (
            snap is not None
            and self.stream is not None
            and snap.stream_id is not None
            and await self.stream.trimmed_after(snap.stream_id)
        ):
            log.warning("stream trimmed past the snapshot; rebuilding")
            snap = None
        if snap is not None and (self.stream is None or snap.stream_id is not None):
            self.world.load_columns(snap.columns)
            start_id = snap.stream_id
        else:
            await self.rebuild()
            start_id = mark
        if self.stream is not None and start_id is not None:
            self.stream.last_id = start_id

    async def rebuild(self) -> None:
        """Regenerate the world from the database."""
        async with self.runtime.uow() as uow:
            report = await service.rebuild(uow, self.world, actor=SYSTEM)
        if report.skipped:
            log.warning("entities left out of the spatial index", skipped=report.skipped)

    def current_snapshot(self) -> snapshot.Snapshot:
        """The world as a snapshot, with the last stream entry it has applied."""
        return snapshot.Snapshot(
            Columns.of_placed(list(self.world.index)), self.stream.last_id if self.stream else None
        )

    async def write_snapshot(self) -> None:
        """Write the world's snapshot file unless nothing changed since the last one.

        Only the entity list is taken on the event loop (the entities are immutable); the
        columns, the encoding and the write run on a worker thread.
        """
        changes = self.world.changes
        if changes == self._written:
            return
        entities = list(self.world.index)
        mark = self.stream.last_id if self.stream else None

        def write() -> None:
            snapshot.write(self.snapshot_path, snapshot.Snapshot(Columns.of_placed(entities), mark))

        try:
            await asyncio.to_thread(write)
            self._written = changes
        except OSError:
            log.exception("spatial snapshot failed", path=str(self.snapshot_path))

    async def _local(self, event: DomainEvent) -> None:
        if event.name in (CHARACTER_MOVED, CHARACTER_DELETED, CHARACTER_RESTORED):
            self.world.apply_quietly(event)
        if self.stream is not None:
            await self.stream.publish([event])

    async def _remote(self, events: list[DomainEvent]) -> None:
        self.world.apply_many(events)

    async def _snapshot_loop(self) -> None:
        while True:
            await asyncio.sleep(SPATIAL_SNAPSHOT_INTERVAL.total_seconds())
            await self.write_snapshot()

    async def stop(self) -> None:
        """Stop following changes; a world that was started leaves its snapshot behind."""
        if self._snapshots is not None:
            self._snapshots.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._snapshots
            self._snapshots = None
        if self.stream is not None:
            await self.stream.stop()
            await self.stream.redis.aclose()
        # After the stream stopped, so the snapshot's stream id matches what the world holds.
        if self._started:
            await self.write_snapshot()


def spatial_of(runtime: Runtime) -> SpatialSync:
    """The spatial sync of `runtime`, created on first use (nothing starts until asked)."""
    found = runtime.extras.get(_KEY)
    if not isinstance(found, SpatialSync):
        found = SpatialSync(runtime)
        runtime.extras[_KEY] = found
    return found


async def world_of(runtime: Runtime) -> World:
    """The started world of `runtime`."""
    return await spatial_of(runtime).ensure_started()


async def stop(runtime: Runtime) -> None:
    """Stop the spatial sync of `runtime`, if it was ever created."""
    found = runtime.extras.get(_KEY)
    if isinstance(found, SpatialSync):
        await found.stop()
