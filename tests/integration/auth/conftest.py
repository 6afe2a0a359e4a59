"""Real-Redis fixtures: a unique key prefix per test, and two independent clients on it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tests.support.services import REDIS_URL


@pytest.fixture
def prefix() -> str:
    """A key prefix no other test (or process) uses."""
    return f"vdmtest:{uuid.uuid4().hex}"


async def _client() -> Redis:
    client = Redis.from_url(REDIS_URL)
    await client.ping()  # a missing Redis fails the test, never skips it
    return client


@pytest.fixture
async def redis_a(prefix: str) -> AsyncIterator[Redis]:
    """One process's client; on teardown deletes this test's keys (and only them)."""
    client = await _client()
    yield client
    keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=500)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def redis_b() -> AsyncIterator[Redis]:
    """Another process's client: its own connection pool, sharing only the server."""
    client = await _client()
    yield client
    await client.aclose()
