"""The benches' load generators count every non-2xx answer, on wrk and on the Python fallback."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bench._load import Result, ensure_wrk, exit_if_errors, run_python, run_wrk

STATUSES = {"/ok": 200, "/missing": 404, "/limited": 429}
Load = Callable[[str, list[tuple[str, str]]], Result]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the benches' servers answer

    def do_GET(self) -> None:
        status = STATUSES.get(self.path.split("?")[0], 500)
        body = b'{"status": %d}' % status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the generators drop their connections when time is up; that is no failure


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A tiny HTTP server on loopback answering 200, 404 and 429 by path."""
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def _wrk(base: str, items: list[tuple[str, str]]) -> Result:
    wrk = ensure_wrk(install=True)
    assert wrk is not None, "wrk is neither installed nor installable here (apt-get as root)"
    return run_wrk(wrk, base, items, seconds=1, connections=4, threads=2)


def _python(base: str, items: list[tuple[str, str]]) -> Result:
    return run_python(base, items, seconds=1, connections=4, processes=2)


GENERATORS = [pytest.param(_wrk, id="wrk"), pytest.param(_python, id="python")]


@pytest.mark.parametrize("load", GENERATORS)
@pytest.mark.parametrize("path", ["/missing", "/limited"])
def test_every_non_2xx_answer_is_an_error(server: str, load: Load, path: str) -> None:
    result = load(server, [(path, "Bearer x")])
    assert result.requests > 0
    assert result.errors == result.requests


@pytest.mark.parametrize("load", GENERATORS)
def test_2xx_answers_are_not_errors(server: str, load: Load) -> None:
    result = load(server, [("/ok", ""), ("/ok", "Bearer x")])
    assert result.requests > 0
    assert result.errors == 0


@pytest.mark.parametrize("load", GENERATORS)
def test_a_mix_counts_only_the_failures(server: str, load: Load) -> None:
    result = load(server, [("/ok", ""), ("/missing", ""), ("/limited", "")])
    assert 0 < result.errors < result.requests


def test_a_refused_connection_is_an_error() -> None:
    result = _python("http://127.0.0.1:1", [("/ok", "")])
    assert result.requests == 0
    assert result.errors > 0


def test_a_bench_with_errors_exits_non_zero(capsys: pytest.CaptureFixture[str]) -> None:
    exit_if_errors(0)
    with pytest.raises(SystemExit) as exited:
        exit_if_errors(3)
    assert exited.value.code == 1
    assert "3 requests" in capsys.readouterr().err
