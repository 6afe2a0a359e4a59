"""An event bus over one Redis stream: XADD (trimmed with MAXLEN ~) and an XREAD loop per process.

Every process reads the stream from its own last id, so each sees every event once, in stream
order, whichever process published it; events from this process are skipped by origin. Handlers
must be idempotent (spatial changes are last-writer-wins). `trimmed_after(id)` tells a process
that starts from an old snapshot whether entries it needs were already trimmed away.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

import orjson
import structlog
from redis.asyncio import Redis

from visualdm.events.bus import DomainEvent, Handler, InProcessBus, SeenIds
from visualdm.ownership import STREAM_LAG_SAMPLES

BatchHandler = Callable[[list[DomainEvent]], Awaitable[None]]

log = structlog.get_logger(__name__)

START = "0-0"


def _id_tuple(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def encode(event: DomainEvent, origin: str) -> bytes:
    """The stream field of `event`, stamped with its origin and send time."""
    return orjson.dumps(
        {
            "n": event.name,
            "e": event.entity,
            "i": event.entity_id,
            "t": event.occurred_at.isoformat(),
            "p": event.payload,
            "o": origin,
            "s": time.time(),
            "d": event.id,
        }
    )


def decode(raw: bytes) -> tuple[DomainEvent, str, float]:
    """Inverse of `encode`: the event, its origin and its send time (epoch seconds)."""
    d: dict[str, Any] = orjson.loads(raw)
    at = datetime.fromisoformat(d["t"])
    event = DomainEvent(d["n"], d["e"], d["i"], at, d["p"], **({"id": d["d"]} if "d" in d else {}))
    return event, str(d["o"]), float(d["s"])


class RedisStreamBus:
    """Publishes to and consumes one Redis stream; see the module docstring."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        *,
        maxlen: int,
        block_ms: int,
        batch: int,
        origin: str | None = None,
    ) -> None:
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen
        self.block_ms = block_ms
        self.batch = batch
        self.origin = origin or uuid.uuid4().hex
        self.last_id = START
        # Send-to-handled lag of recent remote events; the deque drops the oldest by itself.
        self.lag_seconds: deque[float] = deque(maxlen=STREAM_LAG_SAMPLES)
        # Other processes' events reach this process's handlers as the in-process bus delivers.
        self._local = InProcessBus()
        # Batch handlers get each event once too (the outbox may deliver one twice).
        self._seen = SeenIds()
        self._batch_handlers: list[tuple[tuple[str, ...], BatchHandler]] = []
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def subscribe(self, prefix: str, handler: Handler) -> None:
        """Call `handler` for every other process's event whose name starts with `prefix`."""
        self._local.subscribe(prefix, handler)

    def subscribe_batch(self, prefixes: tuple[str, ...], handler: BatchHandler) -> None:
        """Call `handler` once per read with every matching event of that read, in order."""
        self._batch_handlers.append((prefixes, handler))

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Append `events` to the stream in one round trip, trimming it to about `maxlen`."""
        if not events:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for event in events:
                pipe.xadd(
                    self.stream,
                    {"ev": encode(event, self.origin)},
                    maxlen=self.maxlen,
                    approximate=True,
                )
            await pipe.execute()

    async def latest_id(self) -> str:
        """The id of the newest entry (START when the stream is empty)."""
        newest = await self.redis.xrevrange(self.stream, "+", "-", count=1)
        return _as_str(newest[0][0]) if newest else START

    async def trimmed_after(self, stream_id: str) -> bool:
        """Whether entries after `stream_id` may have been trimmed (a replay could miss some).

        Trimming removes the oldest entries, so nothing after `stream_id` is gone while the
        oldest kept entry is at or before it; past that the answer errs on the safe side.
        """
        try:
            info = await self.redis.xinfo_stream(self.stream)
        except Exception:  # no such stream yet: nothing was ever trimmed
            return False
        since = _id_tuple(stream_id)
        if _id_tuple(_as_str(info.get("max-deleted-entry-id", START))) > since:
            return True
        if int(info.get("entries-added", 0)) <= int(info.get("length", 0)):
            return False
        first = info.get("first-entry")
        return first is None or _id_tuple(_as_str(first[0])) > since

    def start(self, from_id: str | None = None) -> None:
        """Start consuming entries after `from_id` (default: the current `last_id`)."""
        if from_id is not None:
            self.last_id = from_id
        if self._task is None:
            self._stopping = False
            self._task = asyncio.create_task(self._run(), name=f"xread:{self.stream}")

    async def stop(self) -> None:
        """Stop consuming."""
        task, self._task = self._task, None
        if task is None:
            return
        # redis-py may turn a cancellation inside a blocking read into a connection error,
        # which the loop would retry: the flag ends the loop whatever the read raised.
        self._stopping = True
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def read_once(self, block_ms: int | None = None) -> int:
        """Read and dispatch one batch after `last_id`; returns how many entries were read."""
        found: Any = await self.redis.xread(
            {self.stream: self.last_id}, count=self.batch, block=block_ms or self.block_ms
        )
        events: list[DomainEvent] = []
        sent: list[float] = []
        for _stream, entries in found or ():
            for entry_id, fields in entries:
                decoded = self._decode(fields)
                if decoded is not None and self._seen.first_time(decoded[0].id):
                    events.append(decoded[0])
                    sent.append(decoded[1])
                self.last_id = _as_str(entry_id)
        await self._local.publish(events)
        for prefixes, batch_handler in self._batch_handlers:
            chosen = [e for e in events if e.name.startswith(prefixes)]
            if chosen:
                try:
                    await batch_handler(chosen)
                except Exception:
                    log.exception("stream batch handler failed", count=len(chosen))
        applied = time.time()
        self.lag_seconds.extend(applied - t for t in sent)
        return sum(len(entries) for _stream, entries in found or ())

    def _decode(self, fields: dict[Any, Any]) -> tuple[DomainEvent, float] | None:
        raw = fields.get(b"ev", fields.get("ev"))
        if raw is None:
            return None
        try:
            event, origin, sent = decode(raw if isinstance(raw, bytes) else raw.encode())
        except (ValueError, KeyError, TypeError):
            log.warning("undecodable stream entry skipped", stream=self.stream)
            return None
        if origin == self.origin:
            return None
        return event, sent

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self.read_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                if self._stopping:
                    return
                log.exception("stream read failed; retrying", stream=self.stream)
                await asyncio.sleep(self.block_ms / 1000)


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
