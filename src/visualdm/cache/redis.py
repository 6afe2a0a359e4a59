"""The Redis cache backend: one pooled `redis.asyncio` client, Lua compare-and-set, short timeouts.

Every failure (refused connection, timeout, broken pipe) surfaces as CacheBackendError, so the
service can fall back to the database; redis-py's own retries are off because a slow cache is
worse than none.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from visualdm.cache import scripts
from visualdm.cache.backend import GENERATION_TTL, CacheBackendError, Kind, Stamp, Stored
from visualdm.cache.keys import CacheKeys
from visualdm.ownership import CACHE_PURGE_BATCH, CACHE_REDIS_TIMEOUT

T = TypeVar("T")
Arg = bytes | str | int

_GENERATION_TTL_MS = int(GENERATION_TTL.total_seconds() * 1000)
_CALL_TIMEOUT = 2 * CACHE_REDIS_TIMEOUT.total_seconds()  # one connect plus one command
_KINDS = {k.value.encode(): k for k in Kind}


def connect(
    url: str, *, max_connections: int = 32, timeout_s: float | None = None
) -> aioredis.Redis:
    """Return a pooled client with short timeouts (the cache's unless given) and no retries."""
    timeout = CACHE_REDIS_TIMEOUT.total_seconds() if timeout_s is None else timeout_s
    pool = aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    return aioredis.Redis.from_pool(pool)


class RedisBackend:
    """Cache entries in Redis under `keys.root`; changes are Lua scripts that also notify."""

    def __init__(self, client: aioredis.Redis, keys: CacheKeys, *, owns_client: bool) -> None:
        self.client = client
        self.keys = keys
        self.origin = uuid.uuid4().hex  # lets the listener skip notices this process sent
        self._owns_client = owns_client
        self._fill = client.register_script(scripts.FILL)
        self._write = client.register_script(scripts.WRITE)
        self._evict = client.register_script(scripts.EVICT)
        self._invalidate = client.register_script(scripts.INVALIDATE)
        self._drop = client.register_script(scripts.DROP)

    @classmethod
    def from_url(cls, url: str, keys: CacheKeys, *, max_connections: int = 32) -> RedisBackend:
        """Connect to `url` with the cache's timeouts; `close()` releases the pool."""
        return cls(connect(url, max_connections=max_connections), keys, owns_client=True)

    async def get(self, key: str) -> Stored | None:
        """Return the live entry at `key`, or None."""
        raw = await self._call(self.client.get(key))
        if raw is None:
            return None
        parts = _bytes(raw).split(b"|", 3)
        if len(parts) != 4 or parts[0] not in _KINDS:
            return None  # not an entry of ours (written by something else): a miss
        return Stored(_KINDS[parts[0]], parts[3])

    async def generations(self, tags: Sequence[str]) -> tuple[int, ...]:
        """Return each tag's invalidation counter."""
        if not tags:
            return ()
        found = await self._call(self.client.mget([self.keys.tag_generation(t) for t in tags]))
        return tuple(int(g) if g is not None else 0 for g in found)

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
        args: list[Arg] = [stored.kind.value, stored.payload, stamp.version, stamp.at_ms, ttl_ms]
        args += [len(tags), *seen]
        result = await self._call(self._fill(keys=self._tag_keys(key, tags), args=args))
        return bool(result)

    async def write(
        self, key: str, payload: bytes, stamp: Stamp, *, ttl_ms: int, tags: Sequence[str]
    ) -> bool:
        """Invalidate `tags` (sparing `key`), then store `payload` if newer; True if stored."""
        args: list[Arg] = [payload, stamp.version, stamp.at_ms, ttl_ms, len(tags)]
        args += [_GENERATION_TTL_MS, self.keys.channel, self._notice(keys=[key], tags=tags)]
        result = await self._call(self._write(keys=self._tag_keys(key, tags), args=args))
        return bool(result)

    async def evict(self, key: str, stamp: Stamp, *, ttl_ms: int, tags: Sequence[str]) -> None:
        """Invalidate `tags`; tombstone `key` for `ttl_ms` unless a newer version is cached."""
        args: list[Arg] = [stamp.version, stamp.at_ms, ttl_ms, len(tags), _GENERATION_TTL_MS]
        args += [self.keys.channel, self._notice(keys=[key], tags=tags)]
        await self._call(self._evict(keys=self._tag_keys(key, tags), args=args))

    async def invalidate(self, tags: Sequence[str]) -> None:
        """Delete every entry carrying one of `tags` and bump the tags' counters."""
        if not tags:
            return
        args: list[Arg] = [len(tags), _GENERATION_TTL_MS, self.keys.channel]
        args.append(self._notice(tags=tags))
        await self._call(self._invalidate(keys=self._tag_keys(None, tags), args=args))

    async def drop(self, keys: Sequence[str]) -> None:
        """Delete `keys` outright and tell other processes."""
        if keys:
            notice = self._notice(keys=keys)
            await self._call(self._drop(keys=list(keys), args=[self.keys.channel, notice]))

    async def purge(self) -> None:
        """Delete every key under this cache's root (SCAN + UNLINK, never KEYS), then notify."""
        cursor = 0
        while True:
            cursor, found = await self._call(
                self.client.scan(cursor, match=f"{self.keys.root}*", count=CACHE_PURGE_BATCH)
            )
            if found:
                await self._call(self.client.unlink(*found))
            if cursor == 0:
                break
        await self._call(self.client.publish(self.keys.channel, self._notice(everything=True)))

    async def close(self) -> None:
        """Release the connection pool (only if this backend created the client)."""
        if self._owns_client:
            await self.client.aclose()

    def _tag_keys(self, key: str | None, tags: Sequence[str]) -> list[str]:
        entry = [] if key is None else [key]
        sets = [self.keys.tag_set(t) for t in tags]
        return entry + sets + [self.keys.tag_generation(t) for t in tags]

    def _notice(
        self, *, keys: Sequence[str] = (), tags: Sequence[str] = (), everything: bool = False
    ) -> bytes:
        return orjson.dumps({"o": self.origin, "k": list(keys), "t": list(tags), "all": everything})

    async def _call(self, pending: Awaitable[T]) -> T:
        try:
            # redis-py bounds connect and reply separately; this bounds their sum, so a request
            # can never hang on the cache even if a lower layer loses its own timeout.
            async with asyncio.timeout(_CALL_TIMEOUT):
                return await pending
        except (TimeoutError, RedisError, OSError) as exc:
            raise CacheBackendError(f"redis: {type(exc).__name__}: {exc}") from exc


def _bytes(raw: bytes | str | None) -> bytes:
    if raw is None:
        return b""
    return raw.encode() if isinstance(raw, str) else raw


def parse_notice(data: bytes) -> dict[str, Any]:
    """Decode a notice published by a RedisBackend."""
    notice: dict[str, Any] = orjson.loads(data)
    return notice
