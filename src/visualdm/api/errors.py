"""Maps domain errors to RFC 9457 problem+json responses; the only place HTTP codes are chosen."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

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


def _jsonable(details: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (v if isinstance(v, str | int | float | bool | None) else str(v))
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
    if isinstance(exc, NotAuthenticated):
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        response.headers["Retry-After"] = str(exc.retry_after)
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


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    response = problem(exc.status_code, f"http_{exc.status_code}", str(exc.detail), str(exc.detail))
    for name, value in (exc.headers or {}).items():
        response.headers[name] = value
    return response


def install(app: FastAPI) -> None:
    """Register the handlers on `app`."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
