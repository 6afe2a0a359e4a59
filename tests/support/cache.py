"""Cache test support: services on memory or real Redis (unique prefix, cleaned), a counting
loader, and a throwaway redis-server that tests may stop and restart.

Only keys under the test's own prefix are ever deleted (SCAN by prefix), never FLUSHDB.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis

from tests.support.services import REDIS_URL
from visualdm.cache.invalidation import InvalidationListener
from visualdm.cache.keys import CacheKeys
from visualdm.cache.local import LocalCache
from visualdm.cache.memory import MemoryBackend
from visualdm.cache.metrics import CacheMetrics
from visualdm.cache.redis import RedisBackend
from visualdm.cache.service import CacheService
from visualdm.clock import Clock

BACKENDS = ("memory", "redis")


def unique_prefix() -> str:
    """A Redis key prefix no other test uses."""
    return f"vdmtest{uuid.uuid4().hex[:12]}"


async def delete_prefix(url: str, prefix: str) -> None:
    """Delete every key under `prefix:` (SCAN + DEL; other tests' keys are untouched)."""
    client = aioredis.Redis.from_url(url)
    try:
        async for key in client.scan_iter(match=f"{prefix}:*", count=500):
            await client.delete(key)
    finally:
        await client.aclose()


def redis_service(
    url: str, prefix: str, clock: Clock, *, local: bool = True, metrics: CacheMetrics | None = None
) -> CacheService:
    """A Redis-backed service like build_cache makes, on `url` under `prefix`."""
    keys = CacheKeys(prefix)
    backend = RedisBackend.from_url(url, keys)
    listener = InvalidationListener(backend.client, keys.channel, origin=backend.origin)
    return CacheService(
        backend,
        keys=keys,
        clock=clock,
        metrics=metrics or CacheMetrics(),
        local=LocalCache(clock) if local else None,
        listener=listener,
    )


@asynccontextmanager
async def cache_service(
    kind: str, clock: Clock, *, prefix: str | None = None, url: str = REDIS_URL
) -> AsyncIterator[CacheService]:
    """Yield a started service on `kind` ('memory' or 'redis'); Redis keys are cleaned after."""
    if kind == "memory":
        yield CacheService(MemoryBackend(clock), keys=CacheKeys("vdm"), clock=clock)
        return
    prefix = prefix or unique_prefix()
    service = redis_service(url, prefix, clock)
    await service.start()
    await wait_subscribed(service)
    try:
        yield service
    finally:
        await service.close()
        await delete_prefix(url, prefix)


async def wait_subscribed(service: CacheService) -> None:
    """Wait (at most 5 s) until the service's invalidation listener is subscribed."""
    assert service.listener is not None
    async with asyncio.timeout(5):
        await service.listener.subscribed.wait()


class CountingLoader:
    """A loader returning `value` (None: not found) that counts its calls; may wait on a gate."""

    def __init__(self, value: Any, *, gate: asyncio.Event | None = None) -> None:
        self.value = value
        self.calls = 0
        self.gate = gate
        self.entered = asyncio.Event()

    async def __call__(self) -> Any:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.value


def loader_of(value: Any) -> Callable[[], Awaitable[Any]]:
    """A loader that returns `value` and must not matter how often it is called."""

    async def load() -> Any:
        return value

    return load


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 5.0) -> bool:
    """Poll `check` every 10 ms until it is true (True) or `within` seconds pass (False)."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.01)
    return False


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawayRedis:
    """A private redis-server (no persistence) on a free port, for outage tests."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._proc: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> None:
        self._proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self._spawn()
        client = aioredis.Redis.from_url(self.url)
        try:
            for _ in range(100):
                try:
                    if await client.ping():
                        return
                except (aioredis.ConnectionError, OSError):
                    await asyncio.sleep(0.05)
            raise RuntimeError(f"redis-server on port {self.port} did not start")
        finally:
            await client.aclose()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open but nothing answers, like a hang."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Unfreeze a paused server (SIGCONT)."""
        assert self._proc is not None
        self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (as an outage would) and wait for it to exit."""
        if self._proc is not None:
            self._proc.send_signal(signal.SIGCONT)  # a paused server must be able to die
            self._proc.kill()
            self._proc.wait(timeout=10)
            self._proc = None
