"""Maps domain errors to RFC 9457 problem+json responses; the only place HTTP codes are chosen."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from visualdm.api.metrics import http_metrics
from visualdm.errors import (
    Conflict,
    DomainError,
    NotAuthenticated,
    NotFound,
    PermissionDenied,
    RateLimited,
    RuleViolation,
    Unavailable,
    VersionConflict,
)

log = structlog.get_logger(__name__)

PROBLEM = "application/problem+json"
TYPE_BASE = "urn:visualdm:problem:"

_STATUS: list[tuple[type[DomainError], int, str]] = [
    (NotFound, 404, "Not Found"),
    (VersionConflict, 409, "Version Conflict"),
    (Conflict, 409, "Conflict"),
    (PermissionDenied, 403, "Forbidden"),
    (NotAuthenticated, 401, "Unauthorized"),
    (RuleViolation, 422, "Unprocessable Content"),
    (RateLimited, 429, "Too Many Requests"),
    (Unavailable, 503, "Service Unavailable"),
]


def problem(status: int, code: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    """Build a problem+json response."""
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


_MEMBERS = frozenset({"type", "title", "status", "detail"})


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    # A detail named like a problem member (a quest's `status`) is kept as `entity_<name>`.
    return {
        (f"entity_{k}" if k in _MEMBERS else k): (
            v if isinstance(v, str | int | float | bool | None) else str(v)
        )
        for k, v in details.items()
    }


async def _domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    status, title = 400, "Bad Request"
    for cls, code, name in _STATUS:
        if isinstance(exc, cls):
            status, title = code, name
            break
    if isinstance(exc, VersionConflict) and request.headers.get("if-match"):
        status, title = 412, "Precondition Failed"
    response = problem(status, exc.code, title, exc.message, **_jsonable(exc.details))
    metrics = http_metrics(request.app.state)
    if isinstance(exc, NotAuthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
        if metrics is not None:
            metrics.auth_failures.inc()
    if isinstance(exc, RateLimited) and metrics is not None:
        metrics.rate_limited.inc()
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
        # The draft RateLimit fields go on refusals too, from the refusal itself: the login
        # throttle's 429 has spent no request budget for RateLimitHeaders to report.
        response.headers["RateLimit-Limit"] = str(exc.limit)
        response.headers["RateLimit-Remaining"] = str(exc.remaining)
        response.headers["RateLimit-Reset"] = str(exc.retry_after)
    if isinstance(exc, VersionConflict) and exc.current_version is not None:
        response.headers["ETag"] = f'"{exc.current_version}"'
    return response


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "loc": list(e.get("loc", ())),
            "msg": str(e.get("msg", "")),
            "type": str(e.get("type", "")),
        }
        for e in exc.errors()
    ]
    return problem(
        422, "validation_error", "Unprocessable Content", "invalid request", errors=errors
    )


async def _overflow(request: Request, exc: Exception) -> JSONResponse:
    # A client-given number too large for the database (an id past BIGINT): bad input, not a 500.
    return problem(422, "out_of_range", "Unprocessable Content", "a number is out of range")


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, f"http_{exc.status_code}", str(exc.detail), str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An RFC 9457 problem; some carry more members (errors, current_version, ...).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
    },
    "additionalProperties": True,
}

_TITLES = {
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found (or soft-deleted)",
    409: "Conflict: a duplicate, a wrong state, or a stale version (with current_version)",
    412: "If-Match names a stale version (with current_version)",
    413: "Request body too large",
    422: "Invalid input or a broken domain rule",
    429: "Rate limit exceeded",
}


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` declaring problem+json answers for these status codes."""
    return {code: {"description": _TITLES.get(code, "Problem")} for code in codes}


def _document_problems(schema: dict[str, Any]) -> None:
    """Make every error response of `schema` a problem+json one, with a default for the rest."""
    schema.setdefault("components", {}).setdefault("schemas", {})["Problem"] = PROBLEM_SCHEMA
    content = {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for operations in schema.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": _TITLES[413]})
            for code, response in responses.items():
                if code[0] in "45":
                    response["content"] = content
            responses["default"] = {"description": "Problem", "content": content}
    for unused in ("HTTPValidationError", "ValidationError"):
        schema["components"]["schemas"].pop(unused, None)


async def _backend_down(request: Request, exc: Exception) -> JSONResponse:
    # Redis or the database could not answer in time: the request may be retried, nothing of it
    # was committed (the unit of work rolled back), and the client must not see a 500.
    log.warning("backing service unavailable", error=type(exc).__name__, path=request.url.path)
    response = problem(
        503, Unavailable.code, "Service Unavailable", "a backing service did not answer in time"
    )
    response.headers["Retry-After"] = "1"
    return response


def install(app: FastAPI) -> None:
    """Register the handlers on `app`, and document their problem+json answers in its OpenAPI."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(RedisError, _backend_down)
    app.add_exception_handler(OperationalError, _backend_down)
    app.add_exception_handler(TimeoutError, _backend_down)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_problems(generate())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override hook
