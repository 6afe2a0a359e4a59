"""Schemathesis over the whole OpenAPI, in-process, as a game master: no 5xx, and every
response matches what the schema documents (status, content type and body).

One app on a fresh SQLite file seeded with the demo world, so generated ids often name real
rows. Bounded to about a minute: 20 derandomized examples per operation and no coverage
phase (its boundary probes doubled the run; the id boundaries are tested in test_factions).

Then the same operations on PostgreSQL (which refuses what SQLite stores), each generated case
given one hostile value somewhere in its path, query or body: NUL or a lone surrogate in text,
integers past 32, 63 and 64 bits or of thousands of digits, 1e400, NaN, JSON nested 300 deep.
Still no 5xx, and every refusal a documented problem.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
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


async def _seeded_runtime(settings: Settings) -> tuple[Runtime, dict[str, str]]:
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
        path = asyncio.run(databases.create_sqlite_template(Path(directory)))
        url = f"sqlite+aiosqlite:///{path}"
        # data_dir: the app's lifespan leaves its spatial snapshot there when it stops.
        runtime, headers = asyncio.run(
            _seeded_runtime(Settings(database_url=url, jwt_secret="s" * 48, data_dir=directory))
        )
        yield Target(create_app(runtime=runtime), headers)


@pytest.fixture(scope="module")
def pg_target(pg_template: str) -> Iterator[Target]:
    name = asyncio.run(databases.create_pg_database(pg_template))
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(
            database_url=databases.pg_url(name),
            db_role_prefix=databases.ROLE_PREFIX,
            jwt_secret="s" * 48,
            data_dir=directory,
        )
        runtime, headers = asyncio.run(_seeded_runtime(settings))
        try:
            yield Target(create_app(runtime=runtime), headers)
        finally:
            asyncio.run(databases.drop_pg_database(name))


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


# --- hostile values anywhere -------------------------------------------------------------------

_RAW = "\x01raw:"
"""Marks a JSON number Python cannot hold (1e400), written into the body text as it is."""


def _nested(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = {"a": value} if i % 2 else [value]
    return value


HOSTILE_BODY_VALUES: list[Any] = [
    "\x00",
    "name\x00with nul",
    "half a pair: \ud800",
    2**31,
    2**63,
    -(2**63) - 1,
    2**64 + 1,
    2**70,
    10**4000,
    _RAW + "1e400",
    _RAW + "-1e400",
    _RAW + "NaN",
    _nested(300),
    {"deep": _nested(260), "big": 2**70},
]
HOSTILE_PARAMETER_VALUES: list[Any] = [
    "\x00",
    "a\x00b",
    "9" * 5000,
    str(2**63),
    str(2**31),
    "-" + "9" * 30,
    "1e400",
    "nan",
    "inf",
]


def _encode(body: Any) -> bytes:
    text = json.dumps(body)
    for raw in ("1e400", "-1e400", "NaN"):
        text = text.replace(json.dumps(_RAW + raw), raw)
    return text.encode()


def _spots(value: Any) -> Iterator[tuple[Any, Any]]:
    """Every (container, key) in a JSON document whose value could be replaced."""
    if isinstance(value, dict):
        for key in value:
            yield value, key
            yield from _spots(value[key])
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield value, index
            yield from _spots(item)


hostile = schemathesis.openapi.from_dict(
    create_app(Settings(jwt_secret="s" * 48)).openapi(),
    config=SchemathesisConfig.from_dict({"phases": {"coverage": {"enabled": False}}}),
).exclude(name=["POST /v1/auth/logout", "DELETE /v1/users/me"])


@hostile.hook("flatmap_case")
def _one_hostile_value(_context: Any, case: Case[Any]) -> st.SearchStrategy[Case[Any]]:
    """The case with one of its path, query or body values replaced by a hostile one."""
    body = case.body if isinstance(case.body, dict | list) else None
    spots = [("body", i) for i, _ in enumerate(_spots(body))]
    spots += [("path", name) for name in case.path_parameters or {}]
    spots += [("query", p.name) for p in case.operation.query]
    if not spots:
        return st.just(case)

    def mutate(spot: tuple[str, Any], value: Any) -> Case[Any]:
        where, key = spot
        if where == "body":
            changed = copy.deepcopy(body)
            container, inner = list(_spots(changed))[key]
            container[inner] = value
            case.body = _encode(changed)  # bytes: sent as they are, 1e400 and NaN included
        elif where == "path":
            case.path_parameters = {**(case.path_parameters or {}), key: value}
        else:
            case.query = {**(case.query or {}), key: value}
        return case

    return st.sampled_from(spots).flatmap(
        lambda spot: st.sampled_from(
            HOSTILE_BODY_VALUES if spot[0] == "body" else HOSTILE_PARAMETER_VALUES
        ).map(lambda value: mutate(spot, value))
    )


@hostile.parametrize()
@settings(
    max_examples=20,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_hostile_values_anywhere_are_refused_as_documented_problems_on_postgres(
    case: Case[Any], pg_target: Target
) -> None:
    kwargs: dict[str, Any] = {"app": pg_target.app, "headers": pg_target.headers}
    case.call_and_validate(checks=CHECKS, **kwargs)
