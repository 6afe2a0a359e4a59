"""What every command shares: running async code, building the runtime, mapping errors to exits."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import NoReturn, TypeVar

import typer
from rich.console import Console
from sqlalchemy.exc import DBAPIError, OperationalError

from visualdm.errors import (
    Conflict,
    DomainError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RuleViolation,
    Unavailable,
)
from visualdm.runtime import Runtime, build_runtime
from visualdm.settings import Settings

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

EXIT_INVALID = 6  # RuleViolation: the input breaks a rule
EXIT_UNAVAILABLE = 7
EXIT_CODES: list[tuple[type[DomainError], int]] = [
    (NotFound, 3),
    (Conflict, 4),
    (PermissionDenied, 5),
    (NotAuthenticated, 5),
    (RuleViolation, EXIT_INVALID),
    (Unavailable, EXIT_UNAVAILABLE),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `message` to stderr and exit with `code`."""
    err_console.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


def run(coro_fn: Callable[[Runtime], Awaitable[T]], *, settings: Settings | None = None) -> T:
    """Build a runtime, run `coro_fn` with it, close it; domain errors become clean exits."""

    async def _main() -> T:
        runtime = build_runtime(settings or Settings())
        try:
            return await coro_fn(runtime)
        finally:
            await runtime.close()

    try:
        return asyncio.run(_main())
    except DomainError as exc:
        code = next((c for cls, c in EXIT_CODES if isinstance(exc, cls)), 1)
        fail(exc.message, code)
    except (OperationalError, OSError) as exc:
        fail(f"the database cannot be reached: {exc}", EXIT_UNAVAILABLE)
    except DBAPIError as exc:
        fail(f"the database refused the operation: {exc.orig}", 1)
