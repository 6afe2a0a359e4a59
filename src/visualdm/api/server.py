"""uvicorn's HTTP/1.1 protocol (httptools) with the registry's bounds on a request's head.

httptools buffers a request line and header block of any size, and any number of fields,
before the app sees a byte of them: before authentication, an anonymous connection could make
the process hold a 20 MB header, or 100,000 fields. Here the head is fed to the parser no
further than MAX_REQUEST_HEAD_BYTES and counted to MAX_REQUEST_HEADERS; past either the answer
is 431 problem+json and the connection is closed. A malformed request is a 400 problem+json
rather than uvicorn's plain text. Everything else is uvicorn's own protocol.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from visualdm.api.errors import PROBLEM, problem_bytes
from visualdm.ownership import MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_HEADERS

_TOO_LARGE = problem_bytes(
    431,
    "request_header_fields_too_large",
    "Request Header Fields Too Large",
    f"the request line and headers must stay within {MAX_REQUEST_HEAD_BYTES} bytes "
    f"and {MAX_REQUEST_HEADERS} fields",
    max_bytes=MAX_REQUEST_HEAD_BYTES,
    max_fields=MAX_REQUEST_HEADERS,
)
_MALFORMED = problem_bytes(400, "malformed_request", "Bad Request", "invalid HTTP request")


class _TooManyFields(Exception):
    """Raised from a parser callback: httptools then stops and reports a parse error."""


class HeadLimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that refuses a request head past the registry's size or field count."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between the end of one request and the end of the next's headers
        self._head_bytes = 0
        self._too_large = False

    def data_received(self, data: bytes) -> None:
        """Feed `data` to the parser, but never more head bytes than the registry allows."""
        while self._in_head and data:
            room = MAX_REQUEST_HEAD_BYTES - self._head_bytes
            if room <= 0:
                self._too_large = True
                self.send_400_response("request head too large")
                return
            # A piece may run past the end of the headers into the body: the count then stops
            # mattering, and the rest of the piece is parsed as body as usual.
            piece, data = data[:room], data[room:]
            self._head_bytes += len(piece)
            if not self._feed(piece):
                return
        if data:
            self._feed(data)

    def _feed(self, data: bytes) -> bool:
        """Parse `data`; whether this protocol still serves the connection afterwards."""
        super().data_received(data)
        transport = self.transport
        return not transport.is_closing() and transport.get_protocol() is self

    def on_header(self, name: bytes, value: bytes) -> None:
        """Keep the field, unless the request already has the most the registry allows (431).

        Checked per field, not once the head is whole: a slow client's unfinished head of
        thousands of tiny fields would otherwise be held as thousands of Python objects.
        """
        if len(self.headers) >= MAX_REQUEST_HEADERS:
            self._too_large = True
            raise _TooManyFields
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        """The head is whole: what follows is the body, bounded by the app, not here."""
        self._in_head = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        """The request is whole: what follows is the next request's head."""
        super().on_message_complete()
        self._in_head = True
        self._head_bytes = 0

    def send_400_response(self, msg: str) -> None:
        """Refuse the request as problem+json (431 for a head past the limits) and close."""
        status, body = (431, _TOO_LARGE) if self._too_large else (400, _MALFORMED)
        content = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend(
            [
                b"content-type: " + PROBLEM.encode() + b"\r\n",
                b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
                b"connection: close\r\n",
                b"\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(content))
        self.transport.close()
