"""A background job repeated for the life of a process: a failure is logged, then retried."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

log = structlog.get_logger(__name__)


async def repeat(job: Callable[[], Awaitable[object]], every: timedelta, *, what: str) -> None:
    """Run `job`, wait `every`, and again, until cancelled; a failing run is logged as `what`."""
    while True:
        try:
            await job()
        except Exception:
            log.warning(f"{what} failed; retrying", exc_info=True)
        await asyncio.sleep(every.total_seconds())
