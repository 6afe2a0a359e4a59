"""Schemathesis over the whole OpenAPI, in-process, as a game master: no 5xx, and every
response matches what the schema documents (status, content type and body).

One app on a fresh SQLite file seeded with the demo world, so generated ids often name real
rows. Bounded to about a minute: 20 derandomized examples per operation and no coverage
phase (its boundary probes doubled the run; the id boundaries are tested in test_factions).
"""

from __future__ import annotations

import asyncio
import dataclasses
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from limits.aio.storage import MemoryStorage
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import select

from tests.support import databases
from visualdm import demo
from visualdm.app import create_app
from visualdm.auth.ratelimit import ApiRateLimiter
from visualdm.ownership import API_RATE_LIMIT, Role
from visualdm.runtime import Runtime, build_runtime
from visualdm.settings import Settings
from visualdm.users.models import User

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]

# The schema is read from an app that has not started: building the OpenAPI needs no runtime.
schema = schemathesis.openapi.from_dict(
    create_app(Settings(jwt_secret="s" * 48)).openapi(),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
).exclude(
    # These would end the GM's own session or account (the auth tests exercise them); every
    # other operation of the schema runs.
    name=["POST /v1/auth/logout", "DELETE /v1/users/me"]
)


@dataclasses.dataclass
class Target:
    app: FastAPI
    headers: dict[str, str]


async def _seeded_runtime(directory: Path) -> tuple[Runtime, dict[str, str]]:
    path = await databases.create_sqlite_template(directory)
    # data_dir: the app's lifespan leaves its spatial snapshot there when it stops.
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{path}", jwt_secret="s" * 48, data_dir=directory
    )
    seeding = build_runtime(settings, cache=False)
    async with seeding.uow() as uow:
        await demo.seed(uow)
        gm = await uow.session.scalar(select(User).where(User.username == "gamemaster"))
        assert gm is not None
        gm_id = gm.id
    await seeding.close()
    # A fresh runtime for the app: its engine and cache bind to the app's own event loop.
    runtime = build_runtime(settings)
    # Hundreds of requests from one user in a minute: lift the per-user limit for this run.
    unlimited = dataclasses.replace(API_RATE_LIMIT, requests_per_window=10**9)
    runtime.auth = runtime.auth.with_limiter(ApiRateLimiter(MemoryStorage(), unlimited))
    token, claims = runtime.auth.codec.issue(gm_id, frozenset({Role.GM}))
    await runtime.auth.store.record(claims.jti, gm_id, claims.expires_at)
    return runtime, {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with tempfile.TemporaryDirectory() as directory:
        runtime, headers = asyncio.run(_seeded_runtime(Path(directory)))
        yield Target(create_app(runtime=runtime), headers)


@schema.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_every_operation_answers_within_its_schema(case: Case[Any], target: Target) -> None:
    kwargs: dict[str, Any] = {"app": target.app, "headers": target.headers}
    case.call_and_validate(checks=CHECKS, **kwargs)
