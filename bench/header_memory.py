"""Server memory while connections hold unfinished 20 MB request heads (issue 13, item 1).

Runs the API (embedded SQLite, one uvicorn worker) once with uvicorn's plain httptools protocol
and once with the bounded one `visualdm serve` uses, and reads the server's resident memory
before and while N connections each send a 20 MB header without ending it and stay open.

    python -m bench.header_memory [--connections 5] [--megabytes 20]

The last line printed is JSON: per protocol, rss_mb before and while held, and how many bytes
each connection got to send before the server answered or closed it.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

PROTOCOLS = {
    "httptools": "httptools",
    "bounded": "visualdm.api.server:HeadLimitedHttpToolsProtocol",
}
CHUNK = 64 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def _hold(port: int, megabytes: int, sent: list[int], stop: threading.Event) -> None:
    """Send an unfinished head of `megabytes` MB, then keep the connection open until `stop`."""
    s = socket.create_connection(("127.0.0.1", port))
    total = 0
    try:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: bench\r\nX-Big: ")
        for _ in range(megabytes * 1024 * 1024 // CHUNK):
            s.sendall(b"a" * CHUNK)
            total += CHUNK
    except OSError:
        pass  # refused: the server answered and closed the connection
    sent.append(total)
    stop.wait()
    s.close()


def measure(
    protocol: str, connections: int, megabytes: int, env: dict[str, str]
) -> dict[str, object]:
    """Start a server with `protocol`, hold the heads, and report its memory."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "visualdm.app:create_app_from_env", "--factory",
         "--port", str(port), "--log-level", "warning", "--no-access-log", "--http", protocol],
        env=env,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").is_success:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        time.sleep(1.0)
        before = _rss_mb(proc.pid)
        sent: list[int] = []
        stop = threading.Event()
        threads = [
            threading.Thread(target=_hold, args=(port, megabytes, sent, stop))
            for _ in range(connections)
        ]
        for t in threads:
            t.start()
        while len(sent) < connections:
            time.sleep(0.1)
        time.sleep(1.0)  # let the server parse what it was sent
        held = _rss_mb(proc.pid)
        healthy = httpx.get(f"http://127.0.0.1:{port}/healthz").status_code
        stop.set()
        for t in threads:
            t.join()
        return {
            "rss_mb_before": round(before, 1),
            "rss_mb_held": round(held, 1),
            "bytes_sent_per_connection": sorted(sent),
            "healthz_while_held": healthy,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    """Run both protocols and print the JSON line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", type=int, default=5)
    parser.add_argument("--megabytes", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        env = {
            **os.environ,
            "VDM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp}/bench.db",
            "VDM_DATA_DIR": tmp,
            "VDM_SCHEDULER": "false",
        }
        subprocess.run(
            [sys.executable, "-c", "from visualdm.cli import main; main()", "db", "upgrade"],
            env=env,
            check=True,
            capture_output=True,
        )
        result = {
            name: measure(protocol, args.connections, args.megabytes, env)
            for name, protocol in PROTOCOLS.items()
        }
    print(json.dumps({"connections": args.connections, "megabytes": args.megabytes, **result}))


if __name__ == "__main__":
    main()
