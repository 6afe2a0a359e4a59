"""The body-size middleware as pure ASGI: what the app is given, and what the client gets."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import Message

from visualdm.api.limits import BodySizeLimit


class Reader:
    """An app that reads the whole body, then answers 200 with how many bytes it got."""

    def __init__(self) -> None:
        self.received = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ConnectionError("client went away")
            self.received += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(self.received).encode()})


async def _run(
    chunks: list[bytes], headers: list[tuple[bytes, bytes]], limit: int
) -> tuple[Reader, list[Message]]:
    app, pending = Reader(), list(chunks)
    sent: list[Message] = []

    async def receive() -> Message:
        body = pending.pop(0) if pending else b""
        return {"type": "http.request", "body": body, "more_body": bool(pending)}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    await BodySizeLimit(app, max_bytes=limit)(scope, receive, send)
    return app, sent


async def test_a_streamed_body_past_the_limit_never_reaches_the_app_beyond_it() -> None:
    app, sent = await _run([b"x" * 40] * 10, [(b"transfer-encoding", b"chunked")], limit=100)
    assert app.received <= 100
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [413]
    assert orjson.loads(sent[-1]["body"])["type"] == "urn:visualdm:problem:content_too_large"


async def test_a_declared_length_past_the_limit_is_refused_before_reading() -> None:
    app, sent = await _run([b"x" * 10], [(b"content-length", b"101")], limit=100)
    assert app.received == 0
    assert sent[0]["status"] == 413


async def test_a_body_at_the_limit_passes_whole() -> None:
    app, sent = await _run([b"x" * 50, b"y" * 50], [(b"content-length", b"100")], limit=100)
    assert app.received == 100
    assert sent[0]["status"] == 200
