"""The hooks domain services call: uncached without a cache, after-commit only, checked early."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.support.cache import CountingLoader
from visualdm.cache import hooks
from visualdm.cache.keys import CacheKeys, InvalidCacheKey, UnserializableCacheValue
from visualdm.cache.memory import MemoryBackend
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock
from visualdm.ownership import Domain


@dataclass
class FakeUow:
    """Just what the hooks touch: the cache, the wrote-cache flag, the tags the transaction
    invalidates and after-commit callbacks."""

    cache: CacheService | None
    wrote_cache: bool = False
    cache_tags: list[str] = field(default_factory=list)
    callbacks: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def after_commit(self, callback: Callable[[], Awaitable[None]]) -> None:
        self.callbacks.append(callback)

    async def commit(self) -> None:
        for callback in self.callbacks:
            await callback()


def make_cache(clock: FrozenClock) -> CacheService:
    return CacheService(MemoryBackend(clock), keys=CacheKeys("vdm"), clock=clock)


async def test_without_a_cache_every_read_loads() -> None:
    uow: Any = FakeUow(cache=None)
    load = CountingLoader({"version": 1})
    await hooks.read_through(uow, Domain.CHARACTER, 1, load)
    await hooks.read_through(uow, Domain.CHARACTER, 1, load)
    hooks.write_through(uow, Domain.CHARACTER, 1, {"version": 2}, version=2)
    assert (load.calls, uow.callbacks) == (2, [])


async def test_write_through_waits_for_the_commit(clock: FrozenClock) -> None:
    cache = make_cache(clock)
    uow: Any = FakeUow(cache=cache)
    hooks.write_through(uow, Domain.CHARACTER, 1, {"version": 2}, version=2)
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) is None
    await cache.invalidate_tags(["character:1"])  # drop the negative entry just cached
    await uow.commit()
    assert await cache.read_through(Domain.CHARACTER, 1, CountingLoader(None)) == {"version": 2}


async def test_reads_after_a_queued_write_bypass_the_cache(clock: FrozenClock) -> None:
    cache = make_cache(clock)
    uow: Any = FakeUow(cache=cache)
    hooks.evict(uow, Domain.CHARACTER, 2)
    uncommitted = CountingLoader({"version": 9})
    await hooks.read_through(uow, Domain.CHARACTER, 1, uncommitted)
    other: Any = FakeUow(cache=cache)
    committed = CountingLoader({"version": 1})
    assert await hooks.read_through(other, Domain.CHARACTER, 1, committed) == {"version": 1}
    assert (uncommitted.calls, committed.calls) == (1, 1)


def test_bad_values_are_refused_before_commit(clock: FrozenClock) -> None:
    uow: Any = FakeUow(cache=make_cache(clock))
    with pytest.raises(UnserializableCacheValue):
        hooks.write_through(uow, Domain.CHARACTER, 1, {"version": 1, "x": {1}}, version=1)
    with pytest.raises(InvalidCacheKey):
        hooks.invalidate(uow, ["bad tag"])
    assert uow.callbacks == []
