"""Request heads past the registry's bounds, sent to a real `visualdm serve` on loopback over raw
sockets (issue 13, item 1): a 20 MB header and 100,000 header fields were answered 200, and
five connections holding unfinished 20 MB heads grew the server by over 130 MB. Now each is a 431
problem+json before authentication, and the connection is closed."""

from __future__ import annotations

import json
import os
import select
import socket
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.servers import CLI, cli, free_port, stop, wait_ready
from visualdm.ownership import MAX_REQUEST_HEAD_BYTES, MAX_REQUEST_HEADERS

MB = 1024 * 1024
CHUNK = 64 * 1024


@dataclass
class Server:
    port: int
    data_dir: Path

    def audit_rows(self) -> int:
        """Rows of the audit log: a request that reached a service would have added one."""
        with sqlite3.connect(self.data_dir / "visualdm.db") as conn:
            (count,) = conn.execute("SELECT count(*) FROM audit_log").fetchone()
        return int(count)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`visualdm serve` on the embedded database, as `make run` starts it."""
    tmp = tmp_path_factory.mktemp("heads")
    env = {
        **os.environ,
        "VDM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/visualdm.db",
        "VDM_DATA_DIR": str(tmp),
        "VDM_SCHEDULER": "false",
    }
    cli(env, "db", "upgrade")
    port = free_port()
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_ready(f"http://127.0.0.1:{port}", proc, log)
        yield Server(port, tmp)
    finally:
        stop([proc])


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    sent: int

    def problem(self) -> dict[str, object]:
        assert self.headers["content-type"] == "application/problem+json"
        found: dict[str, object] = json.loads(self.body)
        return found


def _send(port: int, chunks: Iterable[bytes]) -> Answer:
    """Send `chunks` until the server answers (or all are sent); read the answer to its end."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        sent = 0
        try:
            for chunk in chunks:
                if select.select([s], [], [], 0)[0]:
                    break  # answered already: stop sending, as a client would
                s.sendall(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection on us; its answer is still to be read
        received = b""
        try:
            while block := s.recv(CHUNK):
                received += block
        except ConnectionResetError:
            pass  # the close reset what we were still sending; what arrived is kept
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *fields = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    return Answer(int(status_line.split()[1]), headers, body, sent)


def _huge_header(megabytes: int, *, finished: bool = True) -> Iterator[bytes]:
    yield b"POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
    for _ in range(megabytes * MB // CHUNK):
        yield b"a" * CHUNK
    if finished:
        yield b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


def _refused(server: Server, answer: Answer, audited: int) -> None:
    assert answer.status == 431, answer
    problem = answer.problem()
    assert problem["type"] == "urn:visualdm:problem:request_header_fields_too_large"
    assert problem["max_bytes"] == MAX_REQUEST_HEAD_BYTES
    assert answer.headers["connection"] == "close"
    assert server.audit_rows() == audited  # the login never reached the service


def test_a_20_mb_header_is_a_431(server: Server) -> None:
    audited = server.audit_rows()
    _refused(server, _send(server.port, _huge_header(20)), audited)


def test_100_000_header_fields_are_a_431(server: Server) -> None:
    audited = server.audit_rows()

    def fields() -> Iterator[bytes]:
        yield b"POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        for _ in range(100):
            yield b"X-N: v\r\n" * 1_000
        yield b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"

    _refused(server, _send(server.port, fields()), audited)


def test_one_field_more_than_the_registry_allows_is_a_431_however_short(server: Server) -> None:
    audited = server.audit_rows()
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    head += b"X-N: v\r\n" * MAX_REQUEST_HEADERS + b"\r\n"  # Host plus 100: one too many
    assert len(head) < MAX_REQUEST_HEAD_BYTES
    _refused(server, _send(server.port, [head]), audited)


def test_connections_holding_unfinished_20_mb_heads_are_refused_and_the_server_answers(
    server: Server,
) -> None:
    audited = server.audit_rows()
    with ThreadPoolExecutor(5) as pool:
        answers = list(
            pool.map(lambda _: _send(server.port, _huge_header(20, finished=False)), range(5))
        )
    for answer in answers:
        _refused(server, answer, audited)
    assert httpx.get(f"http://127.0.0.1:{server.port}/healthz").status_code == 200


def test_a_head_within_the_bounds_is_served_and_a_larger_body_is_no_head(server: Server) -> None:
    # 8 KB of cookie (half the head limit) and a body twice the head limit: the app
    # answers (422: the password is too long), not the protocol.
    password = "p" * (2 * MAX_REQUEST_HEAD_BYTES)
    body = json.dumps({"username": "nobody", "password": password}).encode()
    request = (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: c=" + b"x" * 8192 + b"\r\n"
        b"Content-Type: application/json\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )
    answer = _send(server.port, [request])
    assert answer.status == 422, answer
    assert answer.problem()["type"] == "urn:visualdm:problem:validation_error"


def test_a_malformed_request_is_a_400_problem(server: Server) -> None:
    answer = _send(server.port, [b"NOT HTTP AT ALL\r\n\r\n"])
    assert answer.status == 400
    assert answer.problem()["type"] == "urn:visualdm:problem:malformed_request"


def test_pipelined_requests_within_the_bounds_are_all_answered(server: Server) -> None:
    # Each head is counted afresh after the request before it, even within one packet.
    one = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Pad: " + b"p" * 10_000 + b"\r\n\r\n"
    last = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(one * 3 + last)
        received = b""
        while block := s.recv(CHUNK):
            received += block
    assert received.count(b"HTTP/1.1 200 OK") == 4
