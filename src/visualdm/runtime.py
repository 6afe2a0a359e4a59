"""The composition of one process: settings, database, clock, event bus and cache, built once.

app.py, cli.py and the job runner build a Runtime from Settings and open units of work through
it; nothing here is created at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from visualdm.audit.seal import Sealer
from visualdm.auth.context import AuthContext, build_auth
from visualdm.cache.factory import build_cache
from visualdm.cache.redis import connect
from visualdm.cache.service import CacheService
from visualdm.clock import Clock, SystemClock
from visualdm.db.engine import Database, create_database
from visualdm.db.unit_of_work import UnitOfWork, unit_of_work
from visualdm.events.bus import EventBus, InProcessBus
from visualdm.events.outbox import Outbox
from visualdm.ownership import AUTH_REDIS_TIMEOUT
from visualdm.settings import Settings


@dataclass
class Runtime:
    """Everything a request, command or job needs, shared for the life of the process."""

    settings: Settings
    db: Database
    clock: Clock
    bus: EventBus
    auth: AuthContext
    metrics: CollectorRegistry
    cache: CacheService | None = None
    redis: Redis | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    sealer: Sealer = field(init=False)
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        self.sealer = Sealer(self.uow)
        self.outbox = Outbox(
            self.uow, bus=self.bus, clock=self.clock, cache=self.cache, registry=self.metrics
        )

    async def start(self) -> None:
        """Start background work: the cache's invalidation listener, the audit sealer, the
        outbox's acknowledgements and relay."""
        if self.cache is not None:
            await self.cache.start()
        self.sealer.start()
        self.outbox.start()

    async def ping_redis(self) -> bool | None:
        """Whether Redis answers; None when this process runs without Redis."""
        if self.redis is None:
            return None
        try:
            return bool(await self.redis.ping())
        except Exception:  # any failure means "not reachable"
            return False

    @asynccontextmanager
    async def uow(self) -> AsyncIterator[UnitOfWork]:
        """Open a unit of work wired to this runtime's clock, bus and cache."""
        async with unit_of_work(
            self.db, clock=self.clock, bus=self.bus, cache=self.cache, outbox=self.outbox
        ) as u:
            yield u

    async def close(self) -> None:
        """Seal what this process recorded, then release connections and background tasks."""
        await self.outbox.stop()
        await self.sealer.stop()
        if self.cache is not None:
            await self.cache.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.db.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock | None = None,
    cache: bool = True,
    db: Database | None = None,
) -> Runtime:
    """Build the runtime for `settings`: embedded (SQLite, in-process) or production (Redis)."""
    clock = clock or SystemClock()
    metrics = CollectorRegistry()
    redis = (
        connect(
            settings.redis_url,
            max_connections=settings.redis_pool_size,
            timeout_s=AUTH_REDIS_TIMEOUT.total_seconds(),
        )
        if settings.redis_url
        else None
    )
    return Runtime(
        settings=settings,
        db=db or create_database(settings),
        clock=clock,
        bus=InProcessBus(),
        auth=build_auth(settings, clock=clock, redis=redis),
        metrics=metrics,
        cache=build_cache(settings, clock=clock, registry=metrics) if cache else None,
        redis=redis,
    )
