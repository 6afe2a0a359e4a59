"""HTTP load generators for bench/api.py: wrk when present, else a multi-process Python one.

Both keep `connections` keep-alive connections busy for `seconds` and report requests per
second, the 99th percentile latency and the count of non-2xx answers and socket errors.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Result:
    """What one load run measured."""

    rps: float
    p99_ms: float
    errors: int
    requests: int


def exit_if_errors(errors: int) -> None:
    """End the bench with exit status 1 and say why when any request failed (call it last)."""
    if errors:
        print(
            f"FAILED: {errors} requests got a non-2xx answer or a socket error; "
            "these figures do not measure the intended path",
            file=sys.stderr,
        )
        sys.exit(1)


def ensure_wrk(install: bool) -> str | None:
    """Path of wrk; installs Debian's package with apt-get when allowed (root), else None."""
    found = shutil.which("wrk")
    if found or not install or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "timeout": 300}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(
        ["apt-get", "install", "-y", "wrk"], env=env, check=False, **quiet
    ).returncode:
        subprocess.run(["apt-get", "update"], env=env, check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "wrk"], env=env, check=False, **quiet)
    return shutil.which("wrk")


# Each request takes the next path and Authorization header from the list; thread n starts
# n * stride items in, so threads do not repeat each other's requests (distinct cache misses);
# the done() hook prints non-2xx counts as JSON for the parser. `non2xx` must be a global of
# each thread's Lua state: `thread:get` reads globals only, and a `local` would always read nil.
_LUA = """
local items = %s
local stride = %d
local i = 0
non2xx = 0
local thread_counts = {}
function setup(thread)
  table.insert(thread_counts, thread)
  thread:set("first", (#thread_counts - 1) * stride)
end
function init(args) i = first %% #items end
function request()
  i = (i %% #items) + 1
  local it = items[i]
  if it[2] == "" then return wrk.format("GET", it[1]) end
  return wrk.format("GET", it[1], {["Authorization"] = it[2]})
end
function response(status, headers, body)
  if status < 200 or status > 299 then non2xx = non2xx + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(thread_counts) do
    local n = t:get("non2xx")
    if n == nil then error("wrk thread state has no non2xx counter") end
    bad = bad + n
  end
  io.write(string.format('WRKJSON {"requests": %%d, "seconds": %%f, "p99_us": %%f, ' ..
    '"non2xx": %%d, "status_errors": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99), bad,
    summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write +
    summary.errors.timeout))
end
"""


def _lua_list(items: list[tuple[str, str]]) -> str:
    return "{" + ",".join(f"{{{json.dumps(p)},{json.dumps(h)}}}" for p, h in items) + "}"


def run_wrk(
    wrk: str,
    base: str,
    items: list[tuple[str, str]],
    *,
    seconds: float,
    connections: int,
    threads: int,
) -> Result:
    """Run wrk against `base`, cycling through (path, Authorization) `items`."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(_LUA % (_lua_list(items), max(1, len(items) // threads)))
        script = f.name
    try:
        out = subprocess.run(
            [
                wrk,
                "-t",
                str(threads),
                "-c",
                str(connections),
                "-d",
                f"{seconds:g}s",
                "--timeout",
                "5s",
                "-s",
                script,
                base,
            ],
            capture_output=True,
            text=True,
            check=True,
            timeout=seconds + 60,
        ).stdout
    finally:
        Path(script).unlink()
    match = re.search(r"WRKJSON (\{.*\})", out)
    if match is None:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    data = json.loads(match.group(1))
    if int(data["non2xx"]) < int(data["status_errors"]):
        # wrk's own count covers statuses >= 400 only; ours, every non-2xx: it cannot be smaller.
        raise RuntimeError(f"the script's non-2xx count is broken: {data}")
    return Result(
        rps=data["requests"] / data["seconds"],
        p99_ms=data["p99_us"] / 1000,
        errors=int(data["non2xx"]) + int(data["socket_errors"]),
        requests=int(data["requests"]),
    )


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> tuple[int, bool]:
    """Send one request and read its whole answer; returns (status, whether the server closes)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    chunked = closes = False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value
        elif name == b"connection":
            closes = value == b"close"
    if chunked:
        while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
            await reader.readexactly(size + 2)
        await reader.readuntil(b"\r\n")  # no trailers are sent to us
    elif length:
        await reader.readexactly(length)
    return status, closes


async def _connection(
    host: str, port: int, requests: list[bytes], until: float, first: int, stats: list[Any]
) -> None:
    """One keep-alive connection; a failed exchange counts as an error and reconnects."""
    lat: list[float] = stats[0]
    i = first
    while time.perf_counter() < until:
        try:
            reader, writer = await asyncio.open_connection(host, port)
        except OSError:
            stats[1] += 1
            await asyncio.sleep(0.01)
            continue
        try:
            while time.perf_counter() < until:
                i = (i + 1) % len(requests)
                start = time.perf_counter()
                status, closes = await _exchange(reader, writer, requests[i])
                lat.append(time.perf_counter() - start)
                if not 200 <= status <= 299:
                    stats[1] += 1
                if closes:
                    break
        except (OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            stats[1] += 1
        finally:
            writer.close()


def _worker(
    args: tuple[str, int, list[bytes], float, int, int, int],
) -> tuple[list[float], int]:
    host, port, requests, seconds, connections, offset, stride = args

    async def main() -> tuple[list[float], int]:
        stats: list[Any] = [[], 0]
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(
                _connection(host, port, requests, until, (offset + n) * stride - 1, stats)
                for n in range(connections)
            )
        )
        return stats[0], stats[1]

    return asyncio.run(main())


def run_python(
    base: str, items: list[tuple[str, str]], *, seconds: float, connections: int, processes: int
) -> Result:
    """The fallback: `processes` asyncio processes over raw keep-alive sockets."""
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    requests = [
        (
            f"GET {p} HTTP/1.1\r\nHost: {host}\r\n"
            + (f"Authorization: {h}\r\n" if h else "")
            + "\r\n"
        ).encode()
        for p, h in items
    ]
    per = [
        connections // processes + (1 if i < connections % processes else 0)
        for i in range(processes)
    ]
    stride = max(1, len(requests) // connections)  # connections start apart, as in wrk
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(
            _worker,
            [
                (host, port, requests, seconds, n, sum(per[:i]), stride)
                for i, n in enumerate(per)
                if n
            ],
        )
    lat = sorted(x for part, _ in parts for x in part)
    # A failed exchange got no answer, so it has no latency: it counts among the errors only.
    errors = sum(b for _, b in parts)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    return Result(rps=len(lat) / seconds, p99_ms=p99, errors=errors, requests=len(lat))
