"""The cache service: read-through with single-flight and negative entries, write-through, tags.

Reads try the process-local L1 (Redis mode, only while the invalidation listener is subscribed),
then the backend, then the loader. Any backend failure degrades to the loader (see health.py);
no cache failure ever reaches the caller, only bad keys and values do.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any

from visualdm.cache import keys as k
from visualdm.cache.backend import CacheBackend, CacheBackendError, Kind, Loaded, Stamp, Stored
from visualdm.cache.flight import SingleFlight
from visualdm.cache.health import Health
from visualdm.cache.invalidation import InvalidationListener
from visualdm.cache.local import LocalCache
from visualdm.cache.metrics import CacheMetrics
from visualdm.clock import Clock
from visualdm.ownership import NEGATIVE_CACHE_TTL, Domain, cache_ttl

Loader = Callable[[], Awaitable[tuple[Stored, int]]]
_LIST_VERSION = 0  # lists carry no row version: racing fills are settled by tag counters


class CacheService:
    """One cache over one backend; see the module docstring for the read and write paths."""

    def __init__(
        self,
        backend: CacheBackend,
        *,
        keys: k.CacheKeys,
        clock: Clock,
        metrics: CacheMetrics | None = None,
        local: LocalCache | None = None,
        listener: InvalidationListener | None = None,
    ) -> None:
        if local is not None and listener is None:
            raise ValueError("a local cache needs an invalidation listener to stay coherent")
        self.backend = backend
        self.keys = keys
        self.clock = clock
        self.metrics = metrics or CacheMetrics()
        self.local = local
        self.listener = listener
        self.health = Health(backend, clock, self.metrics, forget_local=self._clear_local)
        self._flight: SingleFlight[Stored] = SingleFlight()
        if listener is not None:
            listener.attach(self._on_notice, self._on_connected, self._on_disconnected)

    async def start(self) -> None:
        """Start the invalidation listener, if any (reads also start it on first use)."""
        if self.listener is not None:
            self.listener.start()

    async def close(self) -> None:
        """Stop the listener and release the backend."""
        if self.listener is not None:
            await self.listener.stop()
        await self.backend.close()

    async def read_through(
        self,
        domain: Domain,
        entity_id: int,
        load: Callable[[], Awaitable[Loaded | None]],
        *,
        tags: Sequence[str] = (),
    ) -> Loaded | None:
        """Return the entity (None if absent), loading it once on a miss; raises on bad keys."""
        key = self.keys.entity(domain, entity_id)
        stored = self._local_hit(domain, key)
        if stored is None:  # tags matter only to what is fetched and kept, so checked here

            async def loader() -> tuple[Stored, int]:
                value = await load()
                if value is None:
                    return Stored(Kind.MISSING), -1
                version = k.entity_version(value)
                return Stored(Kind.VALUE, k.encode(dict(value))), version

            all_tags = k.check_tags([k.own_tag(domain, entity_id), *tags])
            stored = await self._read(domain, key, all_tags, loader)
        if stored.kind is not Kind.VALUE:
            return None
        found: dict[str, Any] = k.decode(stored.payload)
        return found

    async def read_list_through(
        self,
        domain: Domain,
        name: str,
        load: Callable[[], Awaitable[list[Any]]],
        *,
        tags: Sequence[str],
    ) -> list[Any]:
        """Return the cached list `name`, loading it once on a miss; dropped by any of `tags`."""
        key = self.keys.listing(domain, name)
        all_tags = k.check_tags(tags)

        async def loader() -> tuple[Stored, int]:
            return Stored(Kind.VALUE, k.encode(list(await load()))), _LIST_VERSION

        found: list[Any] = k.decode((await self._read(domain, key, all_tags, loader)).payload)
        return found

    async def write_through(
        self,
        domain: Domain,
        entity_id: int,
        value: Mapping[str, Any],
        *,
        version: int,
        tags: Sequence[str] = (),
    ) -> None:
        """Invalidate `tags`, then store `value` unless a newer version is cached (LWW)."""
        key = self.keys.entity(domain, entity_id)
        all_tags = k.check_tags([k.own_tag(domain, entity_id), *tags])
        payload = k.encode(dict(value))
        stamp = Stamp(k.entity_version({"version": version}), self._now_ms())
        ttl_ms = _ms(cache_ttl(domain))
        await self._change(
            domain.value,
            "write",
            [key],
            all_tags,
            lambda: self.backend.write(key, payload, stamp, ttl_ms=ttl_ms, tags=all_tags),
        )

    async def evict(
        self,
        domain: Domain,
        entity_id: int,
        *,
        tags: Sequence[str] = (),
        version: int | None = None,
    ) -> None:
        """Invalidate `tags` and mark the entity deleted (at `version`) for NEGATIVE_CACHE_TTL."""
        key = self.keys.entity(domain, entity_id)
        all_tags = k.check_tags([k.own_tag(domain, entity_id), *tags])
        stamp = Stamp(-1 if version is None else version, self._now_ms())
        ttl_ms = _ms(NEGATIVE_CACHE_TTL)
        await self._change(
            domain.value,
            "evict",
            [key],
            all_tags,
            lambda: self.backend.evict(key, stamp, ttl_ms=ttl_ms, tags=all_tags),
        )

    async def invalidate_tags(self, tags: Sequence[str]) -> None:
        """Drop every entry carrying one of `tags`, here and in every process sharing Redis."""
        checked = k.check_tags(tags)
        if not checked:
            return
        label = k.tag_domain(checked[0])
        await self._change(
            label, "invalidate", [], checked, lambda: self.backend.invalidate(checked)
        )

    async def _change(
        self,
        label: str,
        operation: str,
        keys: list[str],
        tags: Sequence[str],
        apply: Callable[[], Awaitable[object]],
    ) -> None:
        self._ensure_started()
        for tag in tags:
            self.metrics.invalidations.labels(k.tag_domain(tag)).inc()
        self._forget_local(keys, tags)
        if not await self.health.available():
            self.health.missed(keys, tags)
            return
        try:
            await apply()
        except CacheBackendError as exc:
            self.health.trip(exc, operation, label)
            self.health.missed(keys, tags)
        # Again after the change: a read that fetched the old value meanwhile must not keep it.
        self._forget_local(keys, tags)

    def _local_hit(self, domain: Domain, key: str) -> Stored | None:
        """The process-local copy of `key`, if it may be used and is there."""
        self._ensure_started()
        if self.local is None or not self._local_usable():
            return None
        found = self.local.get(key)
        if found is not None:
            self.metrics.hit(domain.value, "local")
        return found

    async def _read(self, domain: Domain, key: str, tags: Sequence[str], loader: Loader) -> Stored:
        found = self._local_hit(domain, key)
        if found is not None:
            return found
        return await self._flight.run(key, lambda: self._lookup(domain, key, tags, loader))

    async def _lookup(
        self, domain: Domain, key: str, tags: Sequence[str], loader: Loader
    ) -> Stored:
        label = domain.value
        seq = self.local.seq if self.local is not None else 0
        if not await self.health.available():
            self.metrics.misses.labels(label).inc()
            return (await self._load(label, loader))[0]
        try:
            found = await self.backend.get(key)
            seen = await self.backend.generations(tags) if found is None else ()
        except CacheBackendError as exc:
            self.health.trip(exc, "get", label)
            self.metrics.misses.labels(label).inc()
            return (await self._load(label, loader))[0]
        if found is not None:
            self.metrics.hit(label, "shared")
            self._keep_local(domain, key, found, tags, seq)
            return found
        self.metrics.misses.labels(label).inc()
        stored, version = await self._load(label, loader)
        ttl = NEGATIVE_CACHE_TTL if stored.kind is Kind.MISSING else cache_ttl(domain)
        try:
            kept = await self.backend.fill(
                key, stored, Stamp(version, self._now_ms()), ttl_ms=_ms(ttl), tags=tags, seen=seen
            )
        except CacheBackendError as exc:
            self.health.trip(exc, "fill", label)
            return stored
        if kept:
            self._keep_local(domain, key, stored, tags, seq)
        return stored

    async def _load(self, label: str, loader: Loader) -> tuple[Stored, int]:
        self.metrics.loads.labels(label).inc()
        return await loader()

    def _keep_local(
        self, domain: Domain, key: str, stored: Stored, tags: Sequence[str], seq: int
    ) -> None:
        if self.local is None or not self._local_usable():
            return
        ttl = NEGATIVE_CACHE_TTL if stored.kind is not Kind.VALUE else cache_ttl(domain)
        self.local.put(key, stored, ttl=ttl, tags=tags, seq=seq)

    def _local_usable(self) -> bool:
        # Local copies are safe only while notices from other processes can reach us.
        return self.health.healthy and self.listener is not None and self.listener.connected

    def _forget_local(self, keys: Sequence[str], tags: Sequence[str]) -> None:
        if self.local is not None:
            self.local.forget(keys=keys, tags=tags)

    def _clear_local(self) -> None:
        if self.local is not None:
            self.local.clear()

    def _on_notice(self, notice: dict[str, Any]) -> None:
        if notice.get("all"):
            self._clear_local()
        else:
            self._forget_local(notice.get("k", []), notice.get("t", []))

    async def _on_connected(self) -> None:
        self._clear_local()
        await self.health.recover()

    async def _on_disconnected(self) -> None:
        self._clear_local()

    def _ensure_started(self) -> None:
        if self.listener is not None and not self.listener.started:
            self.listener.start()

    def _now_ms(self) -> int:
        return int(self.clock.now().timestamp() * 1000)


def _ms(ttl: timedelta) -> int:
    return int(ttl.total_seconds() * 1000)
