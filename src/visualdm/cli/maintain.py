"""`visualdm maintain`: run the lifecycle jobs once, with progress bars and a summary table."""

from __future__ import annotations

from datetime import UTC, datetime

import typer
from rich.progress import BarColumn, MofNCompleteColumn, TaskID, TimeElapsedColumn
from rich.progress import Progress as RichBar
from rich.table import Table

from visualdm.cli._common import console, fail, run
from visualdm.clock import FrozenClock
from visualdm.lifecycle.base import JobReport
from visualdm.lifecycle.runner import JOBS, run_jobs
from visualdm.runtime import Runtime


class _Bars:
    """Progress shown as rich bars, one per task."""

    def __init__(self, bar: RichBar) -> None:
        self.bar = bar
        self.tasks: dict[str, TaskID] = {}

    def start(self, task: str, total: int) -> None:
        """Add a bar for `task`."""
        self.tasks[task] = self.bar.add_task(task, total=total)

    def advance(self, task: str, amount: int) -> None:
        """Move the bar of `task`."""
        self.bar.advance(self.tasks[task], amount)


def _as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"--as-of must be a date or ISO 8601 time, not {value!r}", 2)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def maintain(
    job: list[str] = typer.Option(
        [], "--job", help=f"Job to run ({', '.join(JOBS)}); repeatable. Default: all."
    ),
    as_of: str | None = typer.Option(None, "--as-of", help="Run as if it were this date (UTC)."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Count what would change; change nothing."
    ),
) -> None:
    """Purge expired soft deletes, archive inactive records, anonymize inactive users."""
    unknown = [j for j in job if j not in JOBS]
    if unknown:
        fail(f"unknown job {unknown[0]!r}; known: {', '.join(JOBS)}", 2)
    at = _as_of(as_of)

    async def _do(rt: Runtime) -> list[JobReport]:
        if at is not None:
            rt.clock = FrozenClock(at)
        columns = (*RichBar.get_default_columns()[:1], BarColumn(), MofNCompleteColumn())
        with RichBar(*columns, TimeElapsedColumn(), console=console) as bar:
            return await run_jobs(rt, jobs=job or JOBS, dry_run=dry_run, progress=_Bars(bar))

    reports = run(_do)
    table = Table(title="dry run: nothing changed" if dry_run else "maintenance done")
    table.add_column("job")
    table.add_column("kind")
    table.add_column("rows", justify="right")
    for report in reports:
        for kind, rows in report.counts.items():
            table.add_row(report.job, kind, str(rows))
    console.print(table)
