"""`visualdm spatial snapshot|restore|rebuild`: the spatial index's snapshot file and rebuilds."""

from __future__ import annotations

from pathlib import Path

import typer

from visualdm.cli._common import console, run
from visualdm.runtime import Runtime
from visualdm.spatial import service, snapshot
from visualdm.spatial.sync import SYSTEM, spatial_of

app = typer.Typer(help="The spatial index: snapshots and rebuilds.", no_args_is_help=True)


async def _fresh(runtime: Runtime) -> snapshot.Snapshot:
    sync = spatial_of(runtime)
    mark = await sync.stream.latest_id() if sync.stream else None
    await sync.rebuild()
    return snapshot.Snapshot(sync.world.index.snapshot(), mark)


@app.command("snapshot")
def snapshot_cmd(
    out: Path | None = typer.Option(None, "--out", help="File to write (default: data dir)."),
) -> None:
    """Write a checksummed snapshot of the index built from the database (atomically)."""

    async def go(runtime: Runtime) -> tuple[Path, int]:
        snap = await _fresh(runtime)
        path = out or spatial_of(runtime).snapshot_path
        snapshot.write(path, snap)
        await spatial_of(runtime).stop()
        return path, len(snap.columns)

    path, count = run(go)
    console.print(f"wrote {count} entities to {path}")


@app.command("restore")
def restore_cmd(file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Verify a snapshot and install it as the one processes load at start."""

    async def go(runtime: Runtime) -> tuple[Path, int]:
        snap = snapshot.read(file)
        sync = spatial_of(runtime)
        sync.world.load_columns(snap.columns)
        snapshot.write(sync.snapshot_path, snap)
        await sync.stop()
        return sync.snapshot_path, len(snap.columns)

    path, count = run(go)
    console.print(f"restored {count} entities into {path}")


@app.command("rebuild")
def rebuild_cmd() -> None:
    """Regenerate the index from the database and store it as the latest snapshot."""

    async def go(runtime: Runtime) -> tuple[int, dict[str, str]]:
        sync = spatial_of(runtime)
        mark = await sync.stream.latest_id() if sync.stream else None
        async with runtime.uow() as uow:
            report = await service.rebuild(uow, sync.world, actor=SYSTEM)
        snapshot.write(sync.snapshot_path, snapshot.Snapshot(sync.world.index.snapshot(), mark))
        await sync.stop()
        return len(sync.world.index), report.skipped

    count, skipped = run(go)
    console.print(f"rebuilt the index: {count} entities")
    for key, why in skipped.items():
        console.print(f"[yellow]left out[/] {key}: {why}")
