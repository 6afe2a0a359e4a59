"""Lean routes: the hottest reads served by plain Starlette routes placed ahead of FastAPI's.

The cached character read and the spatial index reads (nearest, window, radius, path) use them.

FastAPI's per-route machinery (dependency resolution, two exit stacks, its telemetry and
response wrappers) cost as much per request as everything a cached read does (ADR 0006). A lean
route runs the same checks in the same order without it: its handler calls `current_actor`,
opens its unit of work, and answers with the same Response. The FastAPI route for the same path
stays: it documents the operation in OpenAPI and answers whatever the lean route does not match
(a path segment that is not a decimal number). Middleware and exception handlers are the app's,
so errors are the same problem+json answers.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, TypeAdapter, ValidationError
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from visualdm.api.limits import ID_MAX

LeanEndpoint = Callable[[Request], Awaitable[Response]]

_ENTITY_ID: TypeAdapter[int] = TypeAdapter(Annotated[int, Field(ge=1, le=ID_MAX)])


class _Decimal(Convertor[str]):
    """`{name:decimal}`: a run of ASCII digits, left as text for `path_id` to bound.

    Starlette's `int` converts while matching, so 5,000 nines raised Python's int-size
    ValueError from the router (a 500) before any validation could answer 422.
    """

    regex = "[0-9]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return str(value)


register_url_convertor("decimal", _Decimal())


def path_id(request: Request, name: str) -> int:
    """The path parameter `name` as a row id, validated as FastAPI validates `EntityId`.

    Raises RequestValidationError (422 problem+json), located at ("path", name).
    """
    raw = request.path_params[name]
    try:
        return _ENTITY_ID.validate_python(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("path", name, *error["loc"])} for error in exc.errors()]
        ) from None


Q = TypeVar("Q", bound=BaseModel)


def query_model(request: Request, model: type[Q], *, lists: Collection[str] = ()) -> Q:
    """The query string validated into `model`, as FastAPI validates query parameters.

    A name in `lists` takes every value given (absent when none is); any other name its last
    value. Raises RequestValidationError (422 problem+json), located at ("query", name).
    """
    params = request.query_params
    data: dict[str, Any] = {}
    for name in model.model_fields:
        if name in lists:
            values = params.getlist(name)
            if values:
                data[name] = values
        elif name in params:
            data[name] = params[name]
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("query", *error["loc"])} for error in exc.errors()]
        ) from None


def json_response(model: BaseModel) -> Response:
    """`model` as a JSON answer, serialised once by pydantic."""
    return Response(model.model_dump_json(), media_type="application/json")


def lean_route(path: str, endpoint: LeanEndpoint, *, documented_as: str) -> Route:
    """A GET route for `path` (Starlette syntax, e.g. `{id:decimal}`), reported in metrics under the
    FastAPI route template `documented_as` that describes it in OpenAPI."""
    template = _Template(documented_as)

    async def answer(request: Request) -> Response:
        request.scope["route"] = template  # the metrics label, as FastAPI's routes leave it
        return await endpoint(request)

    return Route(path, answer, methods=["GET"], include_in_schema=False)


class _Template:
    """What the metrics middleware reads off `scope["route"]`: the route's path template."""

    def __init__(self, path: str) -> None:
        self.path = path


def install(app: FastAPI, routes: Sequence[Route]) -> None:
    """Put `routes` first, so they answer before FastAPI's routers are searched."""
    app.router.routes[0:0] = list(routes)
