"""`visualdm archive`: list cold storage and restore archived records."""

from __future__ import annotations

from typing import Any

import typer
from rich.table import Table

from visualdm.access.principals import SystemActor
from visualdm.cli._common import console, run
from visualdm.lifecycle.archive import list_batches, restore, store_url
from visualdm.lifecycle.coldstore import ColdStore
from visualdm.runtime import Runtime

archive_app = typer.Typer(help="Cold storage of inactive records.", no_args_is_help=True)
CLI = SystemActor("cli")


@archive_app.command("list")
def list_command() -> None:
    """List the archive files: kind, rows, rows still archived, checksum."""

    async def _do(rt: Runtime) -> list[dict[str, Any]]:
        return await list_batches(rt.uow)

    table = Table(title="archive")
    for name in ("id", "kind", "rows", "archived_now", "path", "sha256"):
        table.add_column(name)
    for b in run(_do):
        table.add_row(
            *(str(b[k]) for k in ("id", "kind", "rows", "archived_now", "path")), b["sha256"][:16]
        )
    console.print(table)


@archive_app.command("restore")
def restore_command(
    kind: str = typer.Argument(..., help="character or quest"),
    record_id: int = typer.Argument(..., help="The record's id."),
) -> None:
    """Bring an archived record back with its memberships and assignments."""

    async def _do(rt: Runtime) -> dict[str, Any]:
        store = ColdStore(store_url(rt.settings))
        return await restore(rt.uow, store, actor=CLI, kind=kind, record_id=record_id)

    result = run(_do)
    console.print(f"restored {kind} {record_id}: {result['restored']}")
    if result["skipped"]:
        console.print(f"[yellow]skipped (their counterpart is gone):[/] {result['skipped']}")
