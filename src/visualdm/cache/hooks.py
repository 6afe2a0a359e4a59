"""What domain services call to use the cache; each works (uncached) when the uow has no cache.

Services never talk to a cache backend directly: they read through `read_through`, and after a
write they call `write_through` or `evict`, which act only after the unit of work commits.
Once a unit of work has queued a cache change, its own reads bypass the cache: they would see
its uncommitted rows, which must never be cached.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from visualdm.cache import keys
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.ownership import Domain

Loaded = Mapping[str, Any]


def _wrote(uow: UnitOfWork) -> bool:
    return uow.wrote_cache


def _queue(uow: UnitOfWork, apply: Callable[[], Awaitable[None]]) -> None:
    uow.wrote_cache = True
    uow.after_commit(apply)


async def read_through(
    uow: UnitOfWork,
    domain: Domain,
    entity_id: int,
    load: Callable[[], Awaitable[Loaded | None]],
    *,
    tags: Sequence[str] = (),
) -> Loaded | None:
    """Return the cached value of (domain, id), loading and caching it on a miss; None if absent."""
    if uow.cache is None or _wrote(uow):
        return await load()
    result: Loaded | None = await uow.cache.read_through(domain, entity_id, load, tags=tags)
    return result


async def read_list_through(
    uow: UnitOfWork,
    domain: Domain,
    name: str,
    load: Callable[[], Awaitable[list[Any]]],
    *,
    tags: Sequence[str],
) -> list[Any]:
    """Return a cached list (e.g. a faction's members), loading it on a miss; dropped by tags."""
    if uow.cache is None or _wrote(uow):
        return await load()
    result: list[Any] = await uow.cache.read_list_through(domain, name, load, tags=tags)
    return result


def write_through(
    uow: UnitOfWork,
    domain: Domain,
    entity_id: int,
    value: Loaded,
    *,
    version: int,
    tags: Sequence[str] = (),
) -> None:
    """After commit, store `value` (last-writer-wins by version) and invalidate `tags`.

    Raises InvalidCacheKey or UnserializableCacheValue now, not after the commit.
    """
    uow.cache_tags.extend(tags)
    cache = uow.cache
    if cache is None:
        return
    keys.check_id(entity_id)
    keys.check_tags(tags)
    keys.encode(value)

    async def _apply() -> None:
        await cache.write_through(domain, entity_id, value, version=version, tags=tags)

    _queue(uow, _apply)


def evict(
    uow: UnitOfWork,
    domain: Domain,
    entity_id: int,
    *,
    tags: Sequence[str] = (),
    version: int | None = None,
) -> None:
    """After commit, mark (domain, id) deleted at `version` and invalidate `tags`; checks now.

    Passing the deleted row's version lets a later restore (a newer version) replace the mark.
    """
    uow.cache_tags.extend(tags)
    cache = uow.cache
    if cache is None:
        return
    keys.check_id(entity_id)
    keys.check_tags(tags)

    async def _apply() -> None:
        await cache.evict(domain, entity_id, tags=tags, version=version)

    _queue(uow, _apply)


def invalidate(uow: UnitOfWork, tags: Sequence[str]) -> None:
    """After commit, invalidate every cache entry carrying one of `tags`; checks them now."""
    uow.cache_tags.extend(tags)
    cache = uow.cache
    if cache is None or not tags:
        return
    keys.check_tags(tags)

    async def _apply() -> None:
        await cache.invalidate_tags(tags)

    _queue(uow, _apply)
