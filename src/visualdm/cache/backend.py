"""The two cache protocols: `Cache` (what units of work hold) and `CacheBackend` (memory, Redis).

A backend stores entries with their version and timestamp and applies every change atomically:
fills lose to anything newer or to an invalidation that happened while the value was loading,
writes follow last-writer-wins, evictions leave a short tombstone, tags drop their members.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from visualdm.ownership import DOMAINS, Domain

# A tag's counter must outlive any load that read it; the longest entry TTL is a safe bound.
GENERATION_TTL = max(p.cache_ttl for p in DOMAINS.values() if p.cache_ttl is not None)


class Kind(StrEnum):
    """What a stored entry says about its key."""

    VALUE = "v"
    MISSING = "n"  # the loader found nothing: a negative-cache entry
    DELETED = "x"  # evicted after a delete: a tombstone only a newer write replaces


@dataclass(frozen=True, slots=True)
class Stored:
    """An entry as read back: its kind and, for values, the orjson payload."""

    kind: Kind
    payload: bytes = b""


@dataclass(frozen=True, slots=True)
class Stamp:
    """Last-writer-wins order of an entry: version first, then timestamp (ms since epoch)."""

    version: int
    at_ms: int


class CacheBackendError(Exception):
    """The backend could not be reached or answered too slowly; the service degrades on it."""


class CacheBackend(Protocol):
    """Entry storage with atomic compare-and-set, tags and (for Redis) cross-process notices."""

    async def get(self, key: str) -> Stored | None:
        """Return the live entry at `key`, or None."""
        ...

    async def generations(self, tags: Sequence[str]) -> tuple[int, ...]:
        """Return each tag's invalidation counter, to be handed back to `fill`."""
        ...

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
        ...

    async def write(
        self, key: str, payload: bytes, stamp: Stamp, *, ttl_ms: int, tags: Sequence[str]
    ) -> bool:
        """Invalidate `tags` (sparing `key`), then store `payload` if newer; True if stored."""
        ...

    async def evict(self, key: str, stamp: Stamp, *, ttl_ms: int, tags: Sequence[str]) -> None:
        """Invalidate `tags`; tombstone `key` for `ttl_ms` unless a newer version is cached.

        A tombstone with a version (>= 0) yields only to newer versions; without, to later writes.
        """
        ...

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Delete every entry carrying one of `tags` and bump the tags' counters."""
        ...

    async def drop(self, keys: Sequence[str]) -> None:
        """Delete `keys` outright (recovery after missed writes)."""
        ...

    async def purge(self) -> None:
        """Delete every entry of this cache's namespace (recovery after too many misses)."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


Loaded = Mapping[str, Any]


class Cache(Protocol):
    """What `UnitOfWork.cache` is: the operations cache/hooks.py delegates to."""

    async def read_through(
        self,
        domain: Domain,
        entity_id: int,
        load: Callable[[], Awaitable[Loaded | None]],
        *,
        tags: Sequence[str],
    ) -> Loaded | None: ...

    async def read_list_through(
        self,
        domain: Domain,
        name: str,
        load: Callable[[], Awaitable[list[Any]]],
        *,
        tags: Sequence[str],
    ) -> list[Any]: ...

    async def write_through(
        self, domain: Domain, entity_id: int, value: Loaded, *, version: int, tags: Sequence[str]
    ) -> None: ...

    async def evict(
        self, domain: Domain, entity_id: int, *, tags: Sequence[str], version: int | None = None
    ) -> None: ...

    async def invalidate_tags(self, tags: Sequence[str]) -> None: ...
