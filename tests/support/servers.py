"""Real API processes for end-to-end tests: the CLI, a free port, a uvicorn server, readiness."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import redis

from tests.support import databases
from tests.support.services import REDIS_URL

STARTUP_TIMEOUT = 120.0  # generous: imports alone take seconds on a loaded 2-core machine
CLI = [sys.executable, "-c", "from visualdm.cli import main; main()"]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    """Run `visualdm ARGS` as an operator would; fail the test on a non-zero exit."""
    done = subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def start_server(env: dict[str, str], log: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """Start uvicorn on a free port with `env`; returns its base URL and process."""
    port = free_port()
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "visualdm.app:create_app_from_env",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return f"http://127.0.0.1:{port}", proc


def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until `url` answers /readyz with 200; fail with the server's log otherwise."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"server not ready after {STARTUP_TIMEOUT}s:\n{log.read_text()}")


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the processes, killing any that does not exit within 10 s."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Deployment:
    """A production-mode deployment's shared state: its database, Redis prefix and settings."""

    database: str
    env: dict[str, str]


@contextmanager
def production(data_dir: Path, **extra: str) -> Iterator[Deployment]:
    """A fresh PostgreSQL database and Redis prefix with the environment a server would get;
    afterwards both are dropped (only what this made)."""
    name = asyncio.run(databases.create_empty_pg_database())
    prefix = f"vdmtest_{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "VDM_DATABASE_URL": databases.pg_url(name),
        "VDM_DB_ROLE_PREFIX": databases.ROLE_PREFIX,
        "VDM_REDIS_URL": REDIS_URL,
        "VDM_REDIS_PREFIX": prefix,
        "VDM_JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        "VDM_DATA_DIR": str(data_dir),
        **extra,
    }
    try:
        yield Deployment(name, env)
    finally:
        asyncio.run(databases.drop_pg_database(name))
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            r.delete(*keys)
        r.close()
