"""The process-local (L1) cache in front of Redis: small, LRU, short-lived, dropped by notices.

`seq` counts invalidations: a reader notes it before asking Redis and `put` refuses the answer
if an invalidation arrived meanwhile, so a reply that crossed a notice is never kept.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from visualdm.cache.backend import Stored
from visualdm.clock import Clock
from visualdm.ownership import CACHE_LOCAL_MAX_ENTRIES, CACHE_LOCAL_TTL


@dataclass(slots=True)
class _Local:
    stored: Stored
    expires_at: datetime
    tags: tuple[str, ...]


class LocalCache:
    """Entries by key with a tag index; at most `max_entries`, each at most `max_ttl` old."""

    def __init__(
        self,
        clock: Clock,
        *,
        max_entries: int = CACHE_LOCAL_MAX_ENTRIES,
        max_ttl: timedelta = CACHE_LOCAL_TTL,
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._max_ttl = max_ttl
        self._entries: OrderedDict[str, _Local] = OrderedDict()
        self._by_tag: dict[str, set[str]] = {}
        self.seq = 0

    def __len__(self) -> int:
        """Number of entries held."""
        return len(self._entries)

    def get(self, key: str) -> Stored | None:
        """Return the entry at `key` if present and not expired."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._clock.now():
            self._remove(key)
            return None
        self._entries.move_to_end(key)
        return entry.stored

    def put(
        self, key: str, stored: Stored, *, ttl: timedelta, tags: Sequence[str], seq: int
    ) -> bool:
        """Keep `stored` unless an invalidation happened since `seq` was read; True if kept."""
        if seq != self.seq:
            return False
        self._remove(key)
        expires_at = self._clock.now() + min(ttl, self._max_ttl)
        self._entries[key] = _Local(stored, expires_at, tuple(tags))
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self._max_entries:
            self._remove(next(iter(self._entries)))
        return True

    def forget(self, *, keys: Iterable[str] = (), tags: Iterable[str] = ()) -> None:
        """Drop `keys` and every entry carrying one of `tags`; refuses in-flight puts."""
        self.seq += 1
        for key in keys:
            self._remove(key)
        for tag in tags:
            for key in self._by_tag.pop(tag, set()):
                self._remove(key)

    def clear(self) -> None:
        """Drop everything; refuses in-flight puts."""
        self.seq += 1
        self._entries.clear()
        self._by_tag.clear()

    def _remove(self, key: str) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for tag in entry.tags:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]
