"""The memory-backed cache service the unit tests run against."""

from __future__ import annotations

import pytest

from visualdm.cache.keys import CacheKeys
from visualdm.cache.memory import MemoryBackend
from visualdm.cache.service import CacheService
from visualdm.clock import FrozenClock


@pytest.fixture
def cache(clock: FrozenClock) -> CacheService:
    """A cache service over the memory backend, on the test's frozen clock."""
    return CacheService(MemoryBackend(clock), keys=CacheKeys("vdm"), clock=clock)
