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
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Result:
    """What one load run measured."""

    rps: float
    p99_ms: float
    errors: int
    requests: int


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


# Each request takes the next path and Authorization header from the lists, per thread;
# the done() hook prints non-2xx counts as JSON for the parser.
_LUA = """
local items = %s
local i = 0
local non2xx = 0
local thread_counts = {}
function setup(thread) table.insert(thread_counts, thread) end
function init(args) i = math.random(#items) end
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
  for _, t in ipairs(thread_counts) do bad = bad + (t:get("non2xx") or 0) end
  io.write(string.format('WRKJSON {"requests": %%d, "seconds": %%f, "p99_us": %%f, ' ..
    '"non2xx": %%d, "socket_errors": %%d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(99), bad,
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
        f.write(_LUA % _lua_list(items))
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
    return Result(
        rps=data["requests"] / data["seconds"],
        p99_ms=data["p99_us"] / 1000,
        errors=int(data["non2xx"]) + int(data["socket_errors"]),
        requests=int(data["requests"]),
    )


async def _connection(
    host: str, port: int, requests: list[bytes], until: float, lat: list[float], bad: list[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    i = hash(id(lat)) % len(requests)
    try:
        while time.perf_counter() < until:
            i = (i + 1) % len(requests)
            start = time.perf_counter()
            writer.write(requests[i])
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            lat.append(time.perf_counter() - start)
            if not 200 <= status <= 299:
                bad[0] += 1
    except (OSError, asyncio.IncompleteReadError):
        bad[0] += 1
    finally:
        writer.close()


def _worker(args: tuple[str, int, list[bytes], float, int]) -> tuple[list[float], int]:
    host, port, requests, seconds, connections = args

    async def main() -> tuple[list[float], int]:
        lat: list[float] = []
        bad = [0]
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_connection(host, port, requests, until, lat, bad) for _ in range(connections))
        )
        return lat, bad[0]

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
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_worker, [(host, port, requests, seconds, n) for n in per if n])
    lat = sorted(x for part, _ in parts for x in part)
    errors = sum(b for _, b in parts)
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000 if lat else float("nan")
    return Result(rps=len(lat) / seconds, p99_ms=p99, errors=errors, requests=len(lat))
