"""`visualdm demo seed`: fill an empty database with a small believable world."""

from __future__ import annotations

import typer
from rich.table import Table

from visualdm import demo
from visualdm.cli._common import console, run
from visualdm.cli.db import upgrade_and_provision
from visualdm.runtime import Runtime

app = typer.Typer(help="A demo world to explore the API with.", no_args_is_help=True)


@app.command("seed")
def seed() -> None:
    """Migrate if needed, then create a GM, players, characters, factions and quests."""

    async def _do(rt: Runtime) -> demo.SeedReport:
        await upgrade_and_provision(rt)
        async with rt.uow() as uow:
            return await demo.seed(uow)

    report = run(_do)
    table = Table(title="demo world")
    table.add_column("what")
    table.add_column("count", justify="right")
    for what, count in report.counts.items():
        table.add_row(what, str(count))
    console.print(table)
    accounts = Table(title="demo accounts (shown once; change them before real use)")
    accounts.add_column("username")
    accounts.add_column("password")
    for name, password in report.accounts.items():
        accounts.add_row(name, password)
    console.print(accounts)
