"""The baseline of bench/api.py: a bare FastAPI endpoint returning a constant dict."""

from __future__ import annotations

from fastapi import FastAPI


def create_app() -> FastAPI:
    """One GET route, nothing else: what FastAPI + uvicorn cost by themselves."""
    app = FastAPI()

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        return {"status": "ok"}

    return app
