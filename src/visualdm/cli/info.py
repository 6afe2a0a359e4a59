"""`visualdm ownership` and `visualdm audit`: render the registry, verify the audit chain."""

from __future__ import annotations

import json
from enum import StrEnum

import typer

from visualdm.audit.seal import ChainReport, verify
from visualdm.cli._common import console, fail, run
from visualdm.ownership import AUDIT_SEAL_BOUND
from visualdm.ownership_doc import render_json, render_markdown
from visualdm.runtime import Runtime

ownership_app = typer.Typer(help="The data ownership registry.", no_args_is_help=True)
audit_app = typer.Typer(help="The append-only audit log.", no_args_is_help=True)


class Format(StrEnum):
    """Output formats of `ownership show`."""

    markdown = "markdown"
    json = "json"


@ownership_app.command("show")
def show(fmt: Format = typer.Option(Format.markdown, "--format", help="Output format.")) -> None:
    """Print the registry as the spec's tables (markdown) or as JSON."""
    if fmt is Format.json:
        typer.echo(json.dumps(render_json(), indent=2, ensure_ascii=False))
    else:
        typer.echo(render_markdown(), nl=False)


@audit_app.command("verify")
def verify_command() -> None:
    """Recompute the audit hash chain; exit 8 and name the first broken link if any."""

    async def _do(rt: Runtime) -> ChainReport:
        async with rt.uow() as u:
            return await verify(u.session, now=rt.clock.now())

    report = run(_do)
    if not report.ok:
        fail(
            f"audit chain broken at entry {report.broken_seq}: {report.reason} "
            f"({report.checked} entries verified before it)",
            8,
        )
    console.print(f"audit chain intact: {report.checked} entries verified")
    if report.overdue:
        console.print(
            f"warning: {report.overdue} entries have waited longer than "
            f"{AUDIT_SEAL_BOUND.total_seconds():g} s to be sealed (is a sealer running?)"
        )
