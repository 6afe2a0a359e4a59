"""API throughput: a cached GET /v1/characters/{id} against a bare FastAPI endpoint.

Both run in a real uvicorn (one worker, same settings) on loopback, measured in alternating
rounds (the JSON reports medians). The character route goes through bearer authentication,
the shared revocation check, the shared per-user rate limit (Redis) and the cache, on a fresh
PostgreSQL database. Tokens are spread over enough users that
the registry's 100 requests/minute/user never refuses one. The load generator is wrk (installed
from Debian with apt-get when missing and running as root; --no-install forbids it), else a
multi-process Python generator over raw keep-alive sockets; the output says which.

    python -m bench.api [--seconds 10] [--rounds 3] [--connections 64] [--users 4096]
                        [--no-install]

The last line printed is JSON: bare_json_rps, cached_character_get_rps, ratio, p99_ms, errors
(medians over the rounds, errors summed), plus bare_p99_ms and ratio_per_round. Any error
(a non-2xx answer or a socket error) makes the exit status 1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
from redis.asyncio import Redis

from bench._load import Result, ensure_wrk, exit_if_errors, run_python, run_wrk
from bench._pg import bench_database
from visualdm.access.principals import UserActor
from visualdm.auth.token_store import RedisTokenStore
from visualdm.auth.tokens import TokenCodec
from visualdm.characters import service as characters
from visualdm.characters.schemas import CharacterCreate
from visualdm.clock import SystemClock
from visualdm.db.engine import Database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.ownership import Role
from visualdm.users.models import User

REDIS_URL = os.environ.get("VDM_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
CHARACTERS = 64
SERVER_FLAGS = ["--host", "127.0.0.1", "--log-level", "warning", "--no-access-log"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(target: str, env: dict[str, str]) -> Iterator[str]:
    """Run `uvicorn <target> --factory` (one worker) until the block ends; yields its base URL."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--factory", "--port", str(port), *SERVER_FLAGS],
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{target} did not start")
            try:
                if httpx.get(
                    f"{base}/healthz" if "visualdm" in target else f"{base}/bare"
                ).is_success:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def seed(db: Database, users: int, secret: str, prefix: str) -> list[tuple[str, str]]:
    """Insert users and characters; return (path, Authorization) pairs spread over all users."""
    clock = SystemClock()
    now = datetime.now(UTC)
    async with unit_of_work(db, clock=clock) as u:
        rows = [
            User(username=f"bench{i}", roles=[Role.PLAYER.value], created_at=now, updated_at=now)
            for i in range(users)
        ]
        u.session.add_all(rows)
        await u.session.flush()
        ids = [r.id for r in rows]
    ids_by_char = []
    async with unit_of_work(db, clock=clock) as u:
        for n in range(CHARACTERS):
            owner = UserActor(ids[n], frozenset({Role.PLAYER}))
            made = await characters.create_character(
                u, actor=owner, data=CharacterCreate(name=f"Hero {n}", race="human")
            )
            ids_by_char.append(made.id)
    codec = TokenCodec(secret, clock=clock)
    redis = Redis.from_url(REDIS_URL)
    store = RedisTokenStore(redis, prefix=prefix, clock=clock)
    items = []
    try:
        for n, user_id in enumerate(ids):
            token, claims = codec.issue(user_id, frozenset({Role.PLAYER}))
            await store.record(claims.jti, user_id, claims.expires_at)
            path = f"/v1/characters/{ids_by_char[n % CHARACTERS]}"
            items.append((path, f"Bearer {token}"))
    finally:
        await redis.aclose()
    return items


async def drop_keys(prefix: str) -> None:
    """Delete this run's Redis keys (and only them)."""
    redis = Redis.from_url(REDIS_URL)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        for i in range(0, len(keys), 1000):
            await redis.delete(*keys[i : i + 1000])
    finally:
        await redis.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--users", type=int, default=4096)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per endpoint")
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--python-load", action="store_true", help="use the Python generator")
    args = parser.parse_args()

    wrk = None if args.python_load else ensure_wrk(install=not args.no_install)

    def load(base: str, items: list[tuple[str, str]], seconds: float) -> Result:
        if wrk:
            return run_wrk(
                wrk, base, items, seconds=seconds, connections=args.connections, threads=2
            )
        return run_python(base, items, seconds=seconds, connections=args.connections, processes=2)

    print(f"load generator: {'wrk (' + wrk + ')' if wrk else 'python (2 processes, raw sockets)'}")
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    prefix = f"vdmbench_{uuid.uuid4().hex[:12]}"
    secret = secrets.token_urlsafe(48)
    bare_items = [("/bare", "")]

    async def run_both() -> tuple[list[Result], list[Result]]:
        # Both servers stay up and are measured in alternation, so a slow spell of the machine
        # (two cores, shared with wrk) falls on both sides instead of skewing the ratio.
        async with bench_database("api") as db:
            items = await seed(db, args.users, secret, prefix)
            url = db.engine.url.render_as_string(hide_password=False)
            api_env = {
                **env,
                "VDM_DATABASE_URL": url,
                "VDM_REDIS_URL": REDIS_URL,
                "VDM_REDIS_PREFIX": prefix,
                "VDM_JWT_SECRET": secret,
                # The server leaves its spatial snapshot here when it stops; not in the cwd.
                "VDM_DATA_DIR": tempfile.mkdtemp(prefix="vdm-bench-api-"),
            }
            bare_runs: list[Result] = []
            api_runs: list[Result] = []
            try:
                with (
                    serve("bench._bare:create_app", env) as bare_base,
                    serve("visualdm.app:create_app_from_env", api_env) as api_base,
                ):
                    await asyncio.to_thread(load, bare_base, bare_items, args.warmup)
                    await asyncio.to_thread(load, api_base, items, args.warmup)
                    for n in range(args.rounds):
                        bare_runs.append(
                            await asyncio.to_thread(load, bare_base, bare_items, args.seconds)
                        )
                        api_runs.append(
                            await asyncio.to_thread(load, api_base, items, args.seconds)
                        )
                        print(f"round {n + 1}: bare {bare_runs[-1]}")
                        print(f"round {n + 1}: cached character GET {api_runs[-1]}")
            finally:
                await drop_keys(prefix)
            return bare_runs, api_runs

    bare_runs, api_runs = asyncio.run(run_both())
    errors = sum(r.errors for r in bare_runs + api_runs)
    bare_rps = statistics.median(r.rps for r in bare_runs)
    api_rps = statistics.median(r.rps for r in api_runs)
    print(
        json.dumps(
            {
                "bare_json_rps": round(bare_rps),
                "cached_character_get_rps": round(api_rps),
                "ratio": round(api_rps / bare_rps, 3),
                "p99_ms": round(statistics.median(r.p99_ms for r in api_runs), 2),
                "errors": errors,
                "bare_p99_ms": round(statistics.median(r.p99_ms for r in bare_runs), 2),
                "ratio_per_round": [
                    round(a.rps / b.rps, 3) for a, b in zip(api_runs, bare_runs, strict=True)
                ],
            }
        )
    )
    exit_if_errors(errors)


if __name__ == "__main__":
    main()
