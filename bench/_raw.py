"""The physical limits of bench/reads.py: FastAPI + one asyncpg query, nothing else.

`GET /raw/characters/{id}` is one `fetchrow` of a character; `GET /raw/characters?limit=50`
is one query of a page of live characters, returned as they come. The DSN is read from
VDM_BENCH_RAW_DSN (a plain postgresql:// URL).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, HTTPException, Response

_ONE = "SELECT * FROM characters WHERE id = $1 AND deleted_at IS NULL"
_PAGE = "SELECT * FROM characters WHERE deleted_at IS NULL AND id > $1 ORDER BY id LIMIT $2"


def create_app() -> FastAPI:
    """The two raw routes and /healthz, on a pool of 10 connections."""
    pools: list[Any] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pools.append(await asyncpg.create_pool(os.environ["VDM_BENCH_RAW_DSN"], min_size=10))
        try:
            yield
        finally:
            await pools[0].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    # Rows go out through orjson: FastAPI's jsonable_encoder would cost more per 50-row page
    # than the query, and the limit is what the database and one HTTP answer cost.
    @app.get("/raw/characters/{character_id}")
    async def one(character_id: int) -> Response:
        row = await pools[0].fetchrow(_ONE, character_id)
        if row is None:
            raise HTTPException(404)
        return Response(orjson.dumps(dict(row)), media_type="application/json")

    @app.get("/raw/characters")
    async def page(limit: int = 50, after: int = 0) -> Response:
        rows = await pools[0].fetch(_PAGE, after, limit)
        body = orjson.dumps({"items": [dict(r) for r in rows]})
        return Response(body, media_type="application/json")

    return app
