"""The event bus protocol and the in-process bus of the embedded mode."""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

from visualdm.ownership import EVENT_DEDUPE_WINDOW

log = structlog.get_logger(__name__)


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened and was committed: `name` like 'character.updated'.

    `id` is unique per event: a consumer that sees it twice (the outbox delivers at least
    once) knows it is the same event.
    """

    name: str
    entity: str
    entity_id: int | str
    occurred_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)
    id: str = field(default_factory=_new_id)


class SeenIds:
    """The ids of the last `capacity` events delivered, to drop a second delivery."""

    def __init__(self, capacity: int = EVENT_DEDUPE_WINDOW) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self.capacity = capacity

    def first_time(self, event_id: str) -> bool:
        """Whether `event_id` is new (and remember it)."""
        if event_id in self._ids:
            return False
        self._ids.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.capacity:
            self._ids.discard(self._order.popleft())
        return True


Handler = Callable[[DomainEvent], Awaitable[None]]


class EventBus(Protocol):
    """Delivers committed events to subscribers (in this process, or every process)."""

    async def publish(self, events: Sequence[DomainEvent]) -> None: ...

    def subscribe(self, prefix: str, handler: Handler) -> None: ...


class InProcessBus:
    """Calls handlers in this process, in order, once per event id; a failing handler is
    logged, never re-raised."""

    def __init__(self) -> None:
        self._handlers: list[tuple[str, Handler]] = []
        self.seen = SeenIds()

    def subscribe(self, prefix: str, handler: Handler) -> None:
        """Call `handler` for every event whose name starts with `prefix` ('' for all)."""
        self._handlers.append((prefix, handler))

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Deliver `events` to the matching handlers, skipping events delivered before."""
        for event in events:
            if not self.seen.first_time(event.id):
                continue
            for prefix, handler in self._handlers:
                if event.name.startswith(prefix):
                    try:
                        await handler(event)
                    except Exception:
                        # Events follow a committed change: a subscriber's failure must not
                        # turn the caller's success into an error.
                        log.exception("event handler failed", event=event.name)
