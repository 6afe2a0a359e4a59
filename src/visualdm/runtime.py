"""The composition of one process: settings, database, clock, event bus and cache, built once.

app.py, cli.py and the job runner build a Runtime from Settings and open units of work through
it; nothing here is created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from visualdm.clock import Clock, SystemClock
from visualdm.db.engine import Database, create_database
from visualdm.db.unit_of_work import UnitOfWork, unit_of_work
from visualdm.events.bus import EventBus, InProcessBus
from visualdm.settings import Settings


@dataclass
class Runtime:
    """Everything a request, command or job needs, shared for the life of the process."""

    settings: Settings
    db: Database
    clock: Clock
    bus: EventBus
    cache: Any = None
    extras: dict[str, Any] = field(default_factory=dict)

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[UnitOfWork]:
        """Open a unit of work wired to this runtime's clock, bus and cache."""
        async with unit_of_work(self.db, clock=self.clock, bus=self.bus, cache=self.cache) as u:
            yield u

    async def close(self) -> None:
        """Release connections and background tasks."""
        close_cache = getattr(self.cache, "close", None)
        if close_cache is not None:
            await close_cache()
        await self.db.dispose()


def build_runtime(settings: Settings, *, clock: Clock | None = None) -> Runtime:
    """Build the runtime for `settings` (embedded or production)."""
    return Runtime(
        settings=settings,
        db=create_database(settings),
        clock=clock or SystemClock(),
        bus=InProcessBus(),
    )
