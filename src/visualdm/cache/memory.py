"""The in-process cache backend of the embedded mode: the Redis scripts' rules, in Python.

Expiry reads the injected Clock, so tests move time instead of sleeping. Each method runs without
an await, which on one event loop makes it as atomic as a Lua script is on Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from visualdm.cache.backend import GENERATION_TTL, Kind, Stamp, Stored
from visualdm.clock import Clock
from visualdm.ownership import CACHE_MEMORY_SWEEP_EVERY


@dataclass(slots=True)
class _Entry:
    stored: Stored
    stamp: Stamp
    expires_at: datetime


@dataclass(slots=True)
class _TagSet:
    keys: set[str] = field(default_factory=set)
    expires_at: datetime | None = None


def newer(stamp: Stamp, current: _Entry) -> bool:
    """Whether `stamp` wins last-writer-wins over `current`.

    A tombstone that knows the deleted row's version yields only to a newer version (a restore);
    one without a version yields to any later write.
    """
    if current.stored.kind is Kind.DELETED and current.stamp.version < 0:
        return stamp.at_ms > current.stamp.at_ms
    return (stamp.version, stamp.at_ms) > (current.stamp.version, current.stamp.at_ms)


class MemoryBackend:
    """Entries, tag sets and tag counters in dicts, with TTLs measured on `clock`."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._entries: dict[str, _Entry] = {}
        self._tags: dict[str, _TagSet] = {}
        self._generations: dict[str, tuple[int, datetime]] = {}
        self._writes = 0

    def __len__(self) -> int:
        """Number of entries still stored (live or not yet swept)."""
        return len(self._entries)

    async def get(self, key: str) -> Stored | None:
        """Return the live entry at `key`, or None."""
        entry = self._live(key)
        return None if entry is None else entry.stored

    async def generations(self, tags: Sequence[str]) -> tuple[int, ...]:
        """Return each tag's invalidation counter."""
        return tuple(self._generation(t) for t in tags)

    async def fill(
        self,
        key: str,
        stored: Stored,
        stamp: Stamp,
        *,
        ttl_ms: int,
        tags: Sequence[str],
        seen: Sequence[int],
    ) -> bool:
        """Store a loaded entry unless a tag was invalidated since `seen` or a newer one exists."""
        if tuple(seen) != tuple(self._generation(t) for t in tags):
            return False
        current = self._live(key)
        if current is not None and (
            current.stored.kind is Kind.DELETED or not newer(stamp, current)
        ):
            return False
        self._store(key, stored, stamp, ttl_ms, tags)
        return True

    async def write(
        self, key: str, payload: bytes, stamp: Stamp, *, ttl_ms: int, tags: Sequence[str]
    ) -> bool:
        """Invalidate `tags` (sparing `key`), then store `payload` if newer; True if stored."""
        self._invalidate(tags, spare=key)
        current = self._live(key)
        if current is not None and not newer(stamp, current):
            self._register(key, tags, current.expires_at)
            return False
        self._store(key, Stored(Kind.VALUE, payload), stamp, ttl_ms, tags)
        return True

    async def evict(self, key: str, stamp: Stamp, *, ttl_ms: int, tags: Sequence[str]) -> None:
        """Invalidate `tags`; tombstone `key` for `ttl_ms` unless a newer version is cached."""
        self._invalidate(tags, spare=key)
        current = self._live(key)
        if stamp.version >= 0 and current is not None and not newer(stamp, current):
            self._register(key, tags, current.expires_at)
            return
        self._store(key, Stored(Kind.DELETED), stamp, ttl_ms, ())

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Delete every entry carrying one of `tags` and bump the tags' counters."""
        self._invalidate(tags, spare=None)

    async def drop(self, keys: Sequence[str]) -> None:
        """Delete `keys` outright."""
        for key in keys:
            self._entries.pop(key, None)

    async def purge(self) -> None:
        """Delete every entry and tag."""
        self._entries.clear()
        self._tags.clear()

    async def close(self) -> None:
        """Nothing to release."""

    def _now(self) -> datetime:
        return self._clock.now()

    def _live(self, key: str) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.expires_at <= self._now():
            del self._entries[key]
            return None
        return entry

    def _generation(self, tag: str) -> int:
        found = self._generations.get(tag)
        if found is None or found[1] <= self._now():
            return 0
        return found[0]

    def _store(
        self, key: str, stored: Stored, stamp: Stamp, ttl_ms: int, tags: Sequence[str]
    ) -> None:
        expires_at = self._now() + timedelta(milliseconds=ttl_ms)
        self._entries[key] = _Entry(stored, stamp, expires_at)
        self._register(key, tags, expires_at)
        self._writes += 1
        if self._writes % CACHE_MEMORY_SWEEP_EVERY == 0:
            self._sweep()

    def _register(self, key: str, tags: Sequence[str], expires_at: datetime) -> None:
        for tag in tags:
            tag_set = self._tags.setdefault(tag, _TagSet())
            tag_set.keys.add(key)
            # A tag set lives as long as its longest-lived member, like PEXPIRE on Redis.
            if tag_set.expires_at is None or tag_set.expires_at < expires_at:
                tag_set.expires_at = expires_at

    def _invalidate(self, tags: Sequence[str], spare: str | None) -> None:
        now = self._now()
        for tag in tags:
            tag_set = self._tags.pop(tag, None)
            if tag_set is not None:
                for key in tag_set.keys:
                    if key != spare:
                        self._entries.pop(key, None)
            self._generations[tag] = (self._generation(tag) + 1, now + GENERATION_TTL)

    def _sweep(self) -> None:
        now = self._now()
        for key in [k for k, e in self._entries.items() if e.expires_at <= now]:
            del self._entries[key]
        for tag in [t for t, s in self._tags.items() if s.expires_at and s.expires_at <= now]:
            del self._tags[tag]
        for tag in [t for t, (_, at) in self._generations.items() if at <= now]:
            del self._generations[tag]
