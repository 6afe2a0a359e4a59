"""A writer killed with SIGKILL between its commit and its publication loses no event.

A separate process commits a character move and kills itself (SIGKILL) in its first
after-commit callback, before its cache update and its event publication. A running server
(production mode: PostgreSQL + Redis) must then show the move in its spatial index and serve
the new position from its cache, having delivered the event exactly once.
"""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest

from tests.support import databases
from tests.support.accounts import PASSWORD
from tests.support.servers import cli, production, start_server, stop, wait_ready
from visualdm.ownership import OUTBOX_GRACE, OUTBOX_RELAY_INTERVAL

# Commits a move, then dies before anything after the commit runs.
WRITER = """
import asyncio, os, signal, sys
from visualdm.access.principals import SystemActor
from visualdm.characters import service
from visualdm.runtime import build_runtime
from visualdm.settings import Settings

async def main(character_id):
    runtime = build_runtime(Settings())
    async with runtime.uow() as u:
        async def die():
            os.kill(os.getpid(), signal.SIGKILL)
        u.after_commit(die)
        await service.set_position(
            u, actor=SystemActor("simulation"), character_id=character_id, x=500.0, y=-250.0
        )

asyncio.run(main(int(sys.argv[1])))
"""


@dataclass
class Server:
    client: httpx.Client
    env: dict[str, str]
    database: str


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("outbox-crash")
    procs: list[subprocess.Popen[bytes]] = []
    with production(tmp, VDM_SCHEDULER="false") as deployment:
        env = deployment.env
        try:
            cli(env, "db", "upgrade")
            cli(env, "users", "create", "keeper", "--role", "gm", stdin=PASSWORD + "\n")
            log = tmp / "server.log"
            url, proc = start_server(env, log)
            procs.append(proc)
            wait_ready(url, proc, log)
            with httpx.Client(base_url=url, timeout=10.0) as client:
                yield Server(client, env, deployment.database)
        finally:
            stop(procs)


def _recovered(client: httpx.Client) -> float:
    found = re.search(r"^vdm_outbox_recovered_total (\S+)$", client.get("/metrics").text, re.M)
    assert found is not None
    return float(found.group(1))


async def _outbox_rows(database: str) -> int:
    dsn = databases.pg_url(database).replace("postgresql+asyncpg", "postgresql")
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox_events"))
    finally:
        await conn.close()


def test_a_move_committed_by_a_killed_process_reaches_the_server_once(server: Server) -> None:
    c = server.client
    login = c.post("/v1/auth/login", json={"username": "keeper", "password": PASSWORD})
    assert login.status_code == 200, login.text
    headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
    made = c.post("/v1/characters", json={"name": "Runner", "race": "elf"}, headers=headers)
    assert made.status_code == 201, made.text
    cid = made.json()["id"]
    url = f"/v1/characters/{cid}"
    moved = c.put(f"{url}/position", json={"x": 10.0, "y": 10.0}, headers=headers)
    assert moved.status_code == 200, moved.text
    for _ in range(2):  # the server's cache now holds the character at (10, 10)
        assert c.get(url, headers=headers).json()["position"]["x"] == 10.0
    settle = time.monotonic() + 30  # the CLI's events are the server's to deliver; let it
    while asyncio.run(_outbox_rows(server.database)) and time.monotonic() < settle:
        time.sleep(0.2)
    before = _recovered(c)

    writer = subprocess.run(
        [sys.executable, "-c", WRITER, str(cid)], env=server.env, capture_output=True, timeout=120
    )
    assert writer.returncode == -signal.SIGKILL, writer.stderr.decode()

    deadline = time.monotonic() + 30
    position: dict[str, float] | None = None
    nearest: list[str] = []
    while time.monotonic() < deadline:
        position = c.get(url, headers=headers).json()["position"]
        found = c.get("/v1/world/nearest", params={"x": 500, "y": -250}, headers=headers)
        nearest = [item["key"] for item in found.json()["items"]]
        if position and position["x"] == 500.0 and nearest == [f"character:{cid}"]:
            break
        time.sleep(0.2)
    assert position is not None
    assert (position["x"], position["y"]) == (500.0, -250.0)
    assert nearest == [f"character:{cid}"]
    assert _recovered(c) == before + 1
    # Nothing is delivered a second time, and nothing is left behind.
    time.sleep((OUTBOX_GRACE + OUTBOX_RELAY_INTERVAL * 3).total_seconds())
    assert _recovered(c) == before + 1
    assert asyncio.run(_outbox_rows(server.database)) == 0
