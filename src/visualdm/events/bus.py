"""The event bus protocol and the in-process bus of the embedded mode."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class DomainEvent:
    """Something that happened and was committed: `name` like 'character.updated'."""

    name: str
    entity: str
    entity_id: int | str
    occurred_at: datetime
    payload: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[DomainEvent], Awaitable[None]]


class EventBus(Protocol):
    """Delivers committed events to subscribers (in this process, or every process)."""

    async def publish(self, events: Sequence[DomainEvent]) -> None: ...

    def subscribe(self, prefix: str, handler: Handler) -> None: ...


class InProcessBus:
    """Calls handlers in this process, in order; a failing handler is logged, never re-raised."""

    def __init__(self) -> None:
        self._handlers: list[tuple[str, Handler]] = []

    def subscribe(self, prefix: str, handler: Handler) -> None:
        """Call `handler` for every event whose name starts with `prefix` ('' for all)."""
        self._handlers.append((prefix, handler))

    async def publish(self, events: Sequence[DomainEvent]) -> None:
        """Deliver `events` to the matching handlers."""
        for event in events:
            for prefix, handler in self._handlers:
                if event.name.startswith(prefix):
                    try:
                        await handler(event)
                    except Exception:
                        # Events follow a committed change: a subscriber's failure must not
                        # turn the caller's success into an error.
                        log.exception("event handler failed", event=event.name)
