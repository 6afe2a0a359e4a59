"""Request limits at the edge: a body-size cap (413 problem+json), the range of path ids, and
the RateLimit-* headers of the request's budget on every answer."""

from __future__ import annotations

from typing import Annotated

import orjson
from fastapi import Path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from visualdm.auth.ratelimit import RateLimitState
from visualdm.ownership import MAX_REQUEST_BODY_BYTES
from visualdm.storable import BIGINT_MAX

ID_MAX = BIGINT_MAX
"""The largest id a BIGINT column holds; larger ones cannot name a row (and overflow drivers)."""

EntityId = Annotated[int, Path(ge=1, le=ID_MAX)]
"""A path segment naming a row by id."""

_PROBLEM = orjson.dumps(
    {
        "type": "urn:visualdm:problem:content_too_large",
        "title": "Content Too Large",
        "status": 413,
        "detail": f"the request body exceeds {MAX_REQUEST_BODY_BYTES} bytes",
        "max_bytes": MAX_REQUEST_BODY_BYTES,
    }
)


class BodySizeLimit:
    """Answer 413 when a request body exceeds `max_bytes`, by Content-Length or while streaming.

    The app never receives more than `max_bytes` of body: an oversized declared length is
    refused before anything is read, and a chunked body is cut off at the chunk that crosses
    the limit (the app then sees a disconnect, and whatever it answers is dropped).
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_REQUEST_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared, chunked = _body_framing(scope)
        if declared is None and not chunked:
            # HTTP/1.1 without Content-Length or Transfer-Encoding: no body (a plain GET).
            await self.app(scope, receive, send)
            return
        if declared is not None and declared > self.max_bytes:
            await _too_large(send)
            return
        seen = 0
        started = refused = False

        async def limited_receive() -> Message:
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    refused = True
                    if not started:
                        await _too_large(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 (or the app's own partial answer) already went out
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            # After a refusal the app fails on the body it never got; the 413 is the answer.
            if not refused:
                raise


def _body_framing(scope: Scope) -> tuple[int | None, bool]:
    """The declared Content-Length (None if absent or unreadable) and whether a
    Transfer-Encoding is given (a chunked body of unknown length)."""
    length: int | None = None
    encoded = False
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                encoded = True  # unreadable: watch the body as it streams
        elif name == b"transfer-encoding":
            encoded = True
    return length, encoded


async def _too_large(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(_PROBLEM)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _PROBLEM})


RATE_LIMIT_STATE = "rate_limit"
"""Where (in the request's scope state) the dependencies leave the budget the request spent."""


def rate_limit_headers(state: RateLimitState) -> list[tuple[bytes, bytes]]:
    """The draft RateLimit header fields (IETF httpapi-ratelimit-headers) of a budget."""
    return [
        (b"ratelimit-limit", str(state.limit).encode()),
        (b"ratelimit-remaining", str(state.remaining).encode()),
        (b"ratelimit-reset", str(state.reset_after).encode()),
    ]


class RateLimitHeaders:
    """Put the spent budget's RateLimit-* headers on the answer, whatever produced it.

    A route that returns a Response of its own (a cached document, a 304) never sees the
    headers its dependencies set, so they are added here, at the edge, unless already there.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                state = scope.get("state", {}).get(RATE_LIMIT_STATE)
                if state is not None:
                    headers = list(message.get("headers", []))
                    if not any(name.lower() == b"ratelimit-limit" for name, _ in headers):
                        message = {**message, "headers": headers + rate_limit_headers(state)}
            await send(message)

        await self.app(scope, receive, with_headers)
