"""`visualdm users ...`: create accounts from the command line (the first admin, GMs)."""

from __future__ import annotations

import sys
from enum import StrEnum

import typer
from pydantic import SecretStr, ValidationError

from visualdm.access.principals import SystemActor
from visualdm.cli._common import EXIT_INVALID, console, fail, run
from visualdm.ownership import Role
from visualdm.runtime import Runtime
from visualdm.users import service
from visualdm.users.schemas import UserCreate, UserRead

app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)

CLI = SystemActor("cli")


class RoleChoice(StrEnum):
    """The roles an account may be created with."""

    player = "player"
    gm = "gm"
    admin = "admin"


def _interactive() -> bool:
    """Whether a person is typing (prompt) rather than piping the password in."""
    return sys.stdin.isatty()


def _read_password() -> str:
    """A hidden prompt with confirmation on a terminal, else the first line of standard input."""
    if _interactive():
        entered: str = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
        return entered
    return sys.stdin.readline().rstrip("\r\n")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Username (3-64 of A-Z a-z 0-9 _ . -)."),
    role: RoleChoice = typer.Option(RoleChoice.player, "--role", help="Role of the account."),
    email: str | None = typer.Option(None, "--email", help="Contact address."),
) -> None:
    """Create an account; the password comes from a hidden prompt or standard input."""
    password = _read_password()
    if not password:
        fail("a password is required (prompt, or one line on standard input)", EXIT_INVALID)
    try:
        data = UserCreate(username=name, password=SecretStr(password), email=email)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        fail(problems, EXIT_INVALID)

    async def _do(rt: Runtime) -> UserRead:
        async with rt.uow() as uow:
            return await service.create_user(uow, actor=CLI, data=data, roles=[Role(role.value)])

    made = run(_do)
    console.print(f"created user {made.username} (id {made.id}) with role {role.value}")
