"""Graceful degradation: after a backend failure skip the cache, remember what changed, replay it.

While the backend is down, writes it missed are remembered (keys and tags). Before the cache is
trusted again they are replayed (or, past CACHE_MAX_MISSED, the whole namespace is purged), so
a value from before an update this process could not deliver is never served afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from datetime import datetime

import structlog

from visualdm.cache.backend import CacheBackend, CacheBackendError
from visualdm.cache.metrics import CacheMetrics
from visualdm.clock import Clock
from visualdm.ownership import CACHE_MAX_MISSED, CACHE_RETRY_AFTER

log = structlog.get_logger(__name__)


class Health:
    """Whether the backend may be used now; trips on errors, recovers after a replay."""

    def __init__(
        self,
        backend: CacheBackend,
        clock: Clock,
        metrics: CacheMetrics,
        *,
        forget_local: Callable[[], None],
    ) -> None:
        self._backend = backend
        self._clock = clock
        self._metrics = metrics
        self._forget_local = forget_local
        self._lock = asyncio.Lock()
        self.healthy = True
        self._retry_at: datetime | None = None
        self._missed_keys: set[str] = set()
        self._missed_tags: set[str] = set()
        self._overflowed = False

    def trip(self, exc: BaseException, operation: str, domain: str) -> None:
        """Count and log a backend failure; skip the backend for CACHE_RETRY_AFTER."""
        self._metrics.errors.labels(domain, operation).inc()
        log.warning(
            "cache backend failed, using the database",
            operation=operation,
            domain=domain,
            error=str(exc),
        )
        self.healthy = False
        self._retry_at = self._clock.now() + CACHE_RETRY_AFTER
        self._forget_local()

    def missed(self, keys: Sequence[str], tags: Sequence[str]) -> None:
        """Remember a change the backend did not receive, for the replay on recovery."""
        if self._overflowed:
            return
        self._missed_keys.update(keys)
        self._missed_tags.update(tags)
        if len(self._missed_keys) + len(self._missed_tags) > CACHE_MAX_MISSED:
            self._overflowed = True
            self._missed_keys.clear()
            self._missed_tags.clear()

    async def available(self) -> bool:
        """Whether to use the backend now: healthy, or due for a retry that replays successfully."""
        if self.healthy:
            return True
        if self._retry_at is not None and self._clock.now() < self._retry_at:
            return False
        return await self.recover()

    async def recover(self) -> bool:
        """Replay missed changes (or purge) and mark the backend healthy; False if it fails."""
        async with self._lock:
            if self.healthy and not self._pending():
                return True
            try:
                await self._replay()
            except CacheBackendError as exc:
                self.trip(exc, "recover", "cache")
                return False
            self.healthy = True
            self._retry_at = None
            self._forget_local()
            log.info("cache backend recovered")
            return True

    def _pending(self) -> bool:
        return self._overflowed or bool(self._missed_keys or self._missed_tags)

    async def _replay(self) -> None:
        if self._overflowed:
            await self._backend.purge()
        else:
            # Copies: a change that fails during the replay is added back by its own caller.
            tags, keys = sorted(self._missed_tags), sorted(self._missed_keys)
            if tags:
                await self._backend.invalidate(tags)
            if keys:
                await self._backend.drop(keys)
            self._missed_tags.difference_update(tags)
            self._missed_keys.difference_update(keys)
            return
        self._overflowed = False
