"""Maps domain errors to RFC 9457 problem+json responses; the only place HTTP codes are chosen."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import orjson
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from visualdm.ownership import UNAVAILABLE_RETRY_AFTER

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
    if isinstance(exc, Unavailable):
        response.headers["Retry-After"] = _RETRY_AFTER
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


_RETRY_AFTER = str(max(1, round(UNAVAILABLE_RETRY_AFTER.total_seconds())))

# SQLSTATE classes that say the server, not the statement, is the problem: connection
# exceptions, insufficient resources (too many clients), operator intervention (shutting down,
# starting up, cancelled), system errors. A retry may succeed; the statement was not at fault.
_UNAVAILABLE_SQLSTATE = frozenset({"08", "53", "57", "58"})


def database_unavailable(exc: BaseException) -> bool:
    """Whether a database error means "not reachable now" rather than a bad statement."""
    if isinstance(exc, DBAPIError):
        if exc.connection_invalidated:
            return True
        orig: BaseException | None = exc.orig
        # The driver's own exception sits under the DBAPI adapter's (asyncpg's under SQLAlchemy's).
        candidates = [c for c in (orig, getattr(orig, "__cause__", None)) if c is not None]
    else:
        candidates = [exc]
    for candidate in candidates:
        if isinstance(candidate, OSError | asyncpg.InternalClientError | PoolTimeout):
            return True
        sqlstate = getattr(candidate, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE:
            return True
    return False


def _unavailable(request: Request, exc: BaseException) -> JSONResponse:
    # Redis or the database could not answer in time: the request may be retried, nothing of it
    # was committed (the unit of work rolled back), and the client must not see a 500.
    request_id = new_request_id()
    log.warning(
        "backing service unavailable",
        error=type(exc).__name__,
        path=request.url.path,
        request_id=request_id,
    )
    response = problem(
        503,
        Unavailable.code,
        "Service Unavailable",
        "a backing service did not answer in time",
        request_id=request_id,
    )
    response.headers["Retry-After"] = _RETRY_AFTER
    return response


async def _backend_down(request: Request, exc: Exception) -> JSONResponse:
    return _unavailable(request, exc)


def _unavailable_in_chain(exc: BaseException) -> bool:
    # A session used again after its connection died raises PendingRollbackError (from clean-up
    # code, say), with the lost connection as its context: that context decides the answer.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if database_unavailable(current):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


async def _database_error(request: Request, exc: Exception) -> JSONResponse:
    # Driver errors that escaped the repositories: unavailability is a 503; anything else is a
    # bug (bad input should have been refused at the boundary) and goes to the catch-all.
    if _unavailable_in_chain(exc):
        return _unavailable(request, exc)
    raise exc


def new_request_id() -> str:
    """A fresh id naming one failed request in the logs and in its problem body."""
    return secrets.token_hex(8)


def problem_bytes(status: int, code: str, title: str, detail: str, **extra: Any) -> bytes:
    """A problem+json body, for answers sent below the app (server protocol, raw ASGI)."""
    body = {"type": TYPE_BASE + code, "title": title, "status": status, "detail": detail, **extra}
    return orjson.dumps(body)


def internal_error_body(request_id: str) -> bytes:
    """The problem+json body of an unexpected failure; says nothing but where to look."""
    return problem_bytes(
        500,
        "internal_error",
        "Internal Server Error",
        "the server failed to answer; the request id names it in the server log",
        request_id=request_id,
    )


class UnexpectedErrors:
    """Pure ASGI middleware, outermost: an exception no handler mapped is logged with a request
    id and answered 500 problem+json, never plain text, and the keep-alive connection stays
    usable. Once an answer has started nothing else can be sent: it is logged and the
    connection is dropped (re-raised to the server) only if the answer is unfinished."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = finished = False

        async def tracked(message: Message) -> None:
            nonlocal started, finished
            if message["type"] == "http.response.start":
                started = True
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                finished = True
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            request_id = new_request_id()
            log.exception(
                "unhandled error",
                request_id=request_id,
                method=scope.get("method"),
                path=scope.get("path"),
            )
            if finished:
                return
            if started:
                raise
            body = internal_error_body(request_id)
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", PROBLEM.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})


def install(app: FastAPI) -> None:
    """Register the handlers on `app`, and document their problem+json answers in its OpenAPI."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(OverflowError, _overflow)
    app.add_exception_handler(RedisError, _backend_down)
    app.add_exception_handler(OperationalError, _backend_down)
    # The database unreachable: bare socket errors and the driver's own errors escape SQLAlchemy
    # when a connection is being opened; pool exhaustion is SQLAlchemy's TimeoutError.
    app.add_exception_handler(OSError, _backend_down)  # TimeoutError, ConnectionRefusedError
    app.add_exception_handler(PoolTimeout, _backend_down)
    app.add_exception_handler(asyncpg.InternalClientError, _backend_down)
    app.add_exception_handler(asyncpg.PostgresError, _database_error)
    app.add_exception_handler(DBAPIError, _database_error)
    app.add_exception_handler(PendingRollbackError, _database_error)
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document_problems(generate())
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented override hook
