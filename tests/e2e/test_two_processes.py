"""Two real API processes (uvicorn) sharing one PostgreSQL database and one Redis.

A token from one process works on the other, a logout on one is refused by the other at once,
and the per-user rate limit is one budget across both.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from tests.support import databases
from tests.support.accounts import PASSWORD
from tests.support.services import REDIS_URL
from visualdm.ownership import API_RATE_LIMIT

STARTUP_TIMEOUT = 120.0  # generous: imports alone take seconds on a loaded 2-core machine
CLI = [sys.executable, "-c", "from visualdm.cli import main; main()"]


@dataclass
class Cluster:
    a: httpx.Client
    b: httpx.Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _cli(env: dict[str, str], *args: str, stdin: str = "") -> None:
    done = subprocess.run(
        [*CLI, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
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


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Migrate a fresh database, create two users with the CLI, start processes A and B."""
    tmp = tmp_path_factory.mktemp("two-processes")
    name = asyncio.run(databases.create_empty_pg_database())
    prefix = f"vdmtest_{uuid.uuid4().hex}"
    env = {
        **os.environ,
        "VDM_DATABASE_URL": databases.pg_url(name),
        "VDM_DB_ROLE_PREFIX": databases.ROLE_PREFIX,
        "VDM_REDIS_URL": REDIS_URL,
        "VDM_REDIS_PREFIX": prefix,
        "VDM_JWT_SECRET": uuid.uuid4().hex + uuid.uuid4().hex,
        "VDM_DATA_DIR": str(tmp),
    }
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []
    try:
        _cli(env, "db", "upgrade")
        for user in ("alice", "bob"):
            _cli(env, "users", "create", user, stdin=PASSWORD + "\n")
        servers = []
        for label in ("a", "b"):  # started together, so their imports overlap
            port = _free_port()
            log = tmp / f"{label}.log"
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
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
                )
            servers.append((f"http://127.0.0.1:{port}", procs[-1], log))
        for url, proc, log in servers:
            _wait_ready(url, proc, log)
            clients.append(httpx.Client(base_url=url, timeout=10.0))
        yield Cluster(*clients)
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        asyncio.run(databases.drop_pg_database(name))
        r = redis.Redis.from_url(REDIS_URL)
        keys = list(r.scan_iter(match=f"{prefix}:*", count=500))
        if keys:
            r.delete(*keys)
        r.close()


def _login(client: httpx.Client, name: str) -> dict[str, str]:
    r = client.post("/v1/auth/login", json={"username": name, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_a_token_issued_by_one_process_works_on_the_other(cluster: Cluster) -> None:
    headers = _login(cluster.a, "alice")
    me = cluster.b.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    assert me.json()["username"] == "alice"


def test_a_logout_on_one_process_is_refused_by_the_other_at_once(cluster: Cluster) -> None:
    headers = _login(cluster.a, "alice")
    assert cluster.b.get("/v1/auth/me", headers=headers).status_code == 200
    assert cluster.a.post("/v1/auth/logout", headers=headers).status_code == 204
    refused = cluster.b.get("/v1/auth/me", headers=headers)
    assert refused.status_code == 401
    assert refused.headers["content-type"] == "application/problem+json"


def test_the_rate_limit_is_one_budget_across_processes(cluster: Cluster) -> None:
    headers = _login(cluster.b, "bob")
    limit = API_RATE_LIMIT.requests_per_window
    assert limit is not None
    statuses = [
        (cluster.a if i % 2 == 0 else cluster.b).get("/v1/auth/me", headers=headers)
        for i in range(limit + 1)
    ]
    assert [r.status_code for r in statuses[:limit]] == [200] * limit
    assert statuses[limit - 1].headers["ratelimit-remaining"] == "0"
    last = statuses[limit]
    assert last.status_code == 429
    assert int(last.headers["retry-after"]) >= 1
