"""Single-flight: concurrent calls for one key in this process share one execution."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _LeaderGone(Exception):
    """The call that was running for a key was cancelled; its waiters run it themselves."""


class SingleFlight(Generic[T]):
    """Runs at most one call per key at a time; callers arriving meanwhile get its outcome."""

    def __init__(self) -> None:
        self._running: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, call: Callable[[], Awaitable[T]]) -> T:
        """Return `call()`'s result, or that of the call already running for `key`; re-raises."""
        running = self._running.get(key)
        if running is not None:
            try:
                # shield: a waiter's cancellation must not cancel the result others wait for
                return await asyncio.shield(running)
            except _LeaderGone:
                return await self.run(key, call)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            result = await call()
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else _LeaderGone())
            future.exception()  # marks it retrieved when no one else was waiting
            raise
        finally:
            del self._running[key]
        future.set_result(result)
        return result
