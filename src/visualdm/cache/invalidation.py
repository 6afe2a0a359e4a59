"""Cross-process invalidation: a Redis pub/sub subscriber that keeps each process's L1 coherent.

Pub/sub delivers at most once, so the listener reports when it is (re)subscribed and when it lost
the connection: the service trusts its local copies only while subscribed and drops them on both
edges, because notices sent during a gap are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as aioredis
import structlog

from visualdm.cache.redis import parse_notice
from visualdm.ownership import CACHE_RETRY_AFTER

log = structlog.get_logger(__name__)

OnNotice = Callable[[dict[str, Any]], None]
OnEdge = Callable[[], Awaitable[None]]
_POLL_SECONDS = 1.0  # how long one get_message waits; only bounds how fast stop() is noticed
_STOP_SECONDS = 2.0  # how long stop() waits for the listener (and its connection) to close


async def _nothing() -> None:
    return None


class InvalidationListener:
    """Subscribes to `channel`, skips notices from `origin`, reconnects after CACHE_RETRY_AFTER."""

    def __init__(self, client: aioredis.Redis, channel: str, *, origin: str) -> None:
        self._client = client
        self._channel = channel
        self._origin = origin
        self._task: asyncio.Task[None] | None = None
        self._on_notice: OnNotice = lambda _notice: None
        self._on_connected: OnEdge = _nothing
        self._on_disconnected: OnEdge = _nothing
        self.connected = False
        self.subscribed = asyncio.Event()

    def attach(self, on_notice: OnNotice, on_connected: OnEdge, on_disconnected: OnEdge) -> None:
        """Set the callbacks: a notice arrived; subscribed (again); connection lost."""
        self._on_notice = on_notice
        self._on_connected = on_connected
        self._on_disconnected = on_disconnected

    @property
    def started(self) -> bool:
        """Whether the listening task was started."""
        return self._task is not None

    def start(self) -> None:
        """Start listening in a background task (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"cache-listener:{self._channel}")

    async def stop(self) -> None:
        """Stop listening and wait for the task to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # Shutdown must not hang on a wedged connection: give up waiting after a bound.
            done, _ = await asyncio.wait({task}, timeout=_STOP_SECONDS)
            if not done:
                log.warning("cache invalidation listener did not stop in time")
            elif not task.cancelled() and task.exception() is not None:
                log.warning("cache invalidation listener failed", error=repr(task.exception()))

    async def _run(self) -> None:
        while True:
            try:
                await self._listen()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("cache invalidation listener lost Redis", error=repr(exc))
            await asyncio.sleep(CACHE_RETRY_AFTER.total_seconds())

    async def _listen(self) -> None:
        pubsub = self._client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            # Wait for the confirmation: only then is every later notice sure to reach us.
            while await pubsub.get_message(timeout=_POLL_SECONDS) is None:
                pass
            self.connected = True
            await self._on_connected()
            self.subscribed.set()
            while True:
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=_POLL_SECONDS
                )
                if message is not None and message.get("type") == "message":
                    self._dispatch(message["data"])
        finally:
            if self.connected:
                self.connected = False
                self.subscribed.clear()
                await self._on_disconnected()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_STOP_SECONDS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped

    def _dispatch(self, data: bytes) -> None:
        try:
            notice = parse_notice(data)
        except ValueError:
            log.warning("cache invalidation listener got a malformed notice")
            return
        if notice.get("o") != self._origin:
            self._on_notice(notice)
