"""Two real API processes (uvicorn) sharing one PostgreSQL database and one Redis.

A token from one process works on the other, a logout on one is refused by the other at once,
and the per-user rate limit is one budget across both.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.accounts import PASSWORD
from tests.support.servers import cli, production, start_server, stop, wait_ready
from visualdm.ownership import API_RATE_LIMIT


@dataclass
class Cluster:
    a: httpx.Client
    b: httpx.Client


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Migrate a fresh database, create two users with the CLI, start processes A and B."""
    tmp = tmp_path_factory.mktemp("two-processes")
    procs: list[subprocess.Popen[bytes]] = []
    clients: list[httpx.Client] = []
    with production(tmp) as deployment:
        env = deployment.env
        try:
            cli(env, "db", "upgrade")
            for user in ("alice", "bob"):
                cli(env, "users", "create", user, stdin=PASSWORD + "\n")
            servers = []
            for label in ("a", "b"):  # started together, so their imports overlap
                log = tmp / f"{label}.log"
                url, proc = start_server(env, log)
                procs.append(proc)
                servers.append((url, proc, log))
            for url, proc, log in servers:
                wait_ready(url, proc, log)
                clients.append(httpx.Client(base_url=url, timeout=10.0))
            yield Cluster(*clients)
        finally:
            for client in clients:
                client.close()
            stop(procs)


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
