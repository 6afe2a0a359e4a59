"""The cache service on each backend: memory, and real Redis under a unique, cleaned prefix."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.cache import BACKENDS, cache_service
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock


@pytest.fixture(params=BACKENDS)
async def cache(request: pytest.FixtureRequest, clock: FrozenClock) -> AsyncIterator[CacheService]:
    """A started cache service; every test using it runs on memory and on Redis."""
    async with cache_service(request.param, clock) as service:
        yield service
