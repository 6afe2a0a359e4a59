"""Coalescer: callers that ask in the same turn of the event loop share one batched call.

The batch function takes the items in arrival order and returns one result per item. Nothing
waits for a batch to fill: the batch goes out as soon as the callers already running have
asked, so a lone caller pays one loop turn, and a busy process sends fewer, larger calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """Gathers `submit`ted items and runs `batch` on at most `max_batch` of them at a time."""

    def __init__(
        self, batch: Callable[[Sequence[T]], Awaitable[Sequence[R]]], *, max_batch: int
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._batch = batch
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()  # strong references until done

    async def submit(self, item: T) -> R:
        """Add `item` to the next batch and return its result (or raise the batch's error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        if not self._pending:
            # Flush after the callbacks already queued: they may submit to this batch too.
            loop.call_soon(self._flush)
        self._pending.append((item, future))
        if len(self._pending) >= self._max_batch:
            self._flush()
        return await future

    def _flush(self) -> None:
        if not self._pending:
            return
        batch, self._pending = self._pending, []
        task = asyncio.ensure_future(self._run(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._batch([item for item, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"a batch of {len(batch)} got {len(results)} results")
        except Exception as exc:
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            for _, future in batch:
                future.cancel()  # the batch itself was cancelled (shutdown): so are its callers
            raise
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():  # its caller may have gone (a client that disconnected)
                future.set_result(result)
