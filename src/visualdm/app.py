"""create_app(settings): the HTTP composition root (routers, error mapping, lifespan)."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from visualdm.api import errors, lean
from visualdm.api.limits import BodySizeLimit, RateLimitHeaders
from visualdm.api.metrics import RequestMetrics
from visualdm.characters.api import LEAN_ROUTES as CHARACTER_LEAN_ROUTES
from visualdm.characters.api import router as characters_router
from visualdm.factions.api import router as factions_router
from visualdm.lifecycle.api import router as queue_router
from visualdm.lifecycle.runner import start_scheduler
from visualdm.ownership import GC_YOUNG_THRESHOLD
from visualdm.quests.api import router as quests_router
from visualdm.runtime import Runtime, build_runtime
from visualdm.settings import Settings
from visualdm.spatial import sync as spatial_sync
from visualdm.spatial.api import LEAN_ROUTES as WORLD_LEAN_ROUTES
from visualdm.spatial.api import router as world_router
from visualdm.users.api import router as users_router

ROUTERS = (
    characters_router,
    users_router,
    factions_router,
    quests_router,
    queue_router,
    world_router,
)


def settle_garbage_collector() -> None:
    """Tune the collector for serving: start-up objects frozen, young collections rarer.

    The modules, routes, models and pools loaded at start-up live as long as the process;
    frozen, they are no longer traversed by each full collection, which otherwise walked the
    whole heap every few hundred requests.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """Build the API for `settings` (or around an already built `runtime`, for tests)."""
    settings = settings or (runtime.settings if runtime else Settings())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        rt = runtime or build_runtime(settings)
        await rt.start()
        await spatial_sync.spatial_of(rt).ensure_started(background=True)
        # Lifecycle jobs: every process may run the scheduler; the maintenance lock lets only
        # one of them work at a time.
        scheduler = start_scheduler(rt) if rt.settings.scheduler else None
        app.state.runtime = rt
        settle_garbage_collector()
        try:
            yield
        finally:
            if scheduler is not None:
                await scheduler.stop()
            await spatial_sync.stop(rt)
            if runtime is None:
                await rt.close()

    app = FastAPI(
        title="Visual DM",
        version="1.0",
        description="Persistence and service layer of Visual DM.",
        lifespan=lifespan,
    )
    errors.install(app)
    app.add_middleware(BodySizeLimit)
    app.add_middleware(RateLimitHeaders)
    app.add_middleware(RequestMetrics)
    app.add_middleware(errors.UnexpectedErrors)  # outermost: whatever escapes is a problem too
    for router in ROUTERS:
        app.include_router(router)
    lean.install(app, (*CHARACTER_LEAN_ROUTES, *WORLD_LEAN_ROUTES))

    @app.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """Answer while the process is alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"])
    async def readyz() -> JSONResponse:
        """Answer 200 when the database (and Redis, if configured) are reachable, else 503."""
        rt: Runtime = app.state.runtime
        checks: dict[str, str] = {}
        try:
            async with rt.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:  # any failure means "not ready"; the body says which
            checks["database"] = f"unavailable: {type(exc).__name__}"
        redis = await rt.ping_redis()
        if redis is not None:
            checks["redis"] = "ok" if redis else "unavailable"
        ready = all(v == "ok" for v in checks.values())
        return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["ops"], include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this process."""
        rt: Runtime = app.state.runtime
        return Response(generate_latest(rt.metrics), media_type=CONTENT_TYPE_LATEST)

    return app


def create_app_from_env() -> FastAPI:
    """Factory for uvicorn: settings from the environment."""
    return create_app(Settings())
