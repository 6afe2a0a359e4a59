"""Where the test suite finds PostgreSQL and Redis; in CI a missing service is a failure."""

from __future__ import annotations

import os

POSTGRES_URL = os.environ.get(
    "VDM_TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("VDM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
