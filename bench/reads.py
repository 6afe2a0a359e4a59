"""The read path against its physical limits: a cache miss, a list page, nearest, start-up.

Real uvicorn servers (one worker each) on loopback, on a fresh PostgreSQL database and Redis:

- bare: a FastAPI endpoint returning a constant (bench/_bare.py);
- raw get / raw list: FastAPI + one asyncpg query of a character / of 50 characters (_raw.py);
- uncached get: `GET /v1/characters/{id}`, each request a character never read before, so
  every read misses the cache (each round reads its own slice of ids);
- list: `GET /v1/characters?limit=50`;
- nearest: `GET /v1/world/nearest?k=10` at random points over the seeded world;
- start-up: seconds from launching the API server to its first 200 on `/healthz` with the
  seeded world, first with no snapshot (a bulk rebuild from the database), then from the
  snapshot the first server wrote when it stopped (startup_s_1m). Bytecode is compiled
  first, as in a deployment, so a start does not include compiling the modules.

Tokens are spread over enough users that the registry's per-user rate limit never refuses one.
Endpoints are measured in alternating rounds; the JSON reports medians. Every non-2xx answer and
socket error is counted (bench/_load.py); any error makes the exit status 1.

    python -m bench.reads [--seconds 5] [--rounds 3] [--connections 32] [--users 8192]
                          [--entities 1000000] [--no-install] [--python-load]

The last line printed is JSON: raw_get_rps, uncached_get_rps, uncached_ratio, raw_list_rps,
list_rps, list_ratio, bare_rps, nearest_rps, nearest_ratio, startup_s_1m, errors, plus
startup_rebuild_s, entities, p99 figures and the ratios per round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from bench._load import Result, ensure_wrk, exit_if_errors, run_python, run_wrk
from bench._pg import bench_database
from bench.api import REDIS_URL, SERVER_FLAGS, _free_port, drop_keys, seed
from visualdm.db.engine import Database

WORLD_HALF = 900_000.0  # entities lie in ±WORLD_HALF, inside the default world bounds
NEAREST_POINTS = 4_096


@contextmanager
def serve(
    target: str, env: dict[str, str], health: str = "/healthz"
) -> Iterator[tuple[str, float]]:
    """Run `uvicorn <target> --factory` until the block ends; yields (base URL, seconds from
    launch to the first 200 of `health`)."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", target, "--factory", "--port", str(port), *SERVER_FLAGS],
        env=env,
    )
    try:
        while True:
            if proc.poll() is not None or time.perf_counter() - started > 300:
                raise RuntimeError(f"{target} did not start")
            try:
                if httpx.get(f"{base}{health}", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.01)
        yield base, time.perf_counter() - started
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _dsn(db: Database) -> str:
    url = db.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


async def seed_characters(db: Database, count: int) -> list[int]:
    """Copy the seeded characters until there are `count` more; returns every live id."""
    conn = await asyncpg.connect(_dsn(db))
    try:
        columns = [
            r["column_name"]
            for r in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_name = 'characters' AND column_name <> 'id' ORDER BY ordinal_position"
            )
        ]
        listed = ", ".join(columns)
        picked = ", ".join(f"c.{c}" if c != "name" else "'Copy ' || g" for c in columns)
        # Column names come from the catalogue, not from input.
        await conn.execute(
            f"INSERT INTO characters ({listed}) SELECT {picked} "  # noqa: S608
            "FROM generate_series(1, $1) g "
            "JOIN characters c ON c.id = (SELECT min(id) FROM characters) + g % 64",
            count,
        )
        return [r["id"] for r in await conn.fetch("SELECT id FROM characters ORDER BY id")]
    finally:
        await conn.close()


async def seed_world(db: Database, count: int) -> None:
    """Insert `count` world entities at random places (COPY)."""
    rng = random.Random(16)
    now = datetime.now(UTC)
    kinds = ("house", "tree", "npc", "wall")
    conn = await asyncpg.connect(_dsn(db))
    try:
        for start in range(0, count, 200_000):
            rows = [
                (
                    kinds[i % 4],
                    "",
                    rng.uniform(-WORLD_HALF, WORLD_HALF),
                    rng.uniform(-WORLD_HALF, WORLD_HALF),
                    4.0,
                    4.0,
                    i % 4 != 2,
                    now,
                    now,
                    now,
                )
                for i in range(start, min(count, start + 200_000))
            ]
            await conn.copy_records_to_table(
                "world_entities",
                records=rows,
                columns=[
                    "kind",
                    "name",
                    "x",
                    "y",
                    "width",
                    "height",
                    "is_solid",
                    "position_updated_at",
                    "created_at",
                    "updated_at",
                ],
            )
    finally:
        await conn.close()


async def analyze(db: Database) -> None:
    """Planner statistics for the bulk-inserted rows, as autovacuum would gather them."""
    conn = await asyncpg.connect(_dsn(db))
    try:
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def _ratio(a: float, b: float) -> float:
    return round(a / b, 3) if b else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--users", type=int, default=8192)
    parser.add_argument("--entities", type=int, default=1_000_000)
    parser.add_argument(
        "--misses-per-round", type=int, default=20_000, help="distinct characters per round"
    )
    parser.add_argument("--no-install", action="store_true", help="never apt-get install wrk")
    parser.add_argument("--python-load", action="store_true", help="use the Python generator")
    args = parser.parse_args()

    wrk = None if args.python_load else ensure_wrk(install=not args.no_install)
    print(f"load generator: {'wrk (' + wrk + ')' if wrk else 'python (2 processes, raw sockets)'}")

    def load(base: str, items: list[tuple[str, str]], seconds: float) -> Result:
        if wrk:
            return run_wrk(
                wrk, base, items, seconds=seconds, connections=args.connections, threads=2
            )
        return run_python(base, items, seconds=seconds, connections=args.connections, processes=2)

    # Servers start as deployed ones do, from compiled bytecode: the environment may forbid
    # writing it (PYTHONDONTWRITEBYTECODE), which would make every start compile every module.
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run(
        [sys.executable, "-c", "import uvicorn, visualdm.app, bench._raw"], env=env, check=True
    )
    prefix = f"vdmbench_{uuid.uuid4().hex[:12]}"
    secret = secrets.token_urlsafe(48)
    runs: dict[str, list[Result]] = {}
    startup: dict[str, float] = {}

    async def measure() -> None:
        async with bench_database("reads") as db:
            t = time.perf_counter()
            pairs = await seed(db, args.users, secret, prefix)
            auth = [h for _, h in pairs]
            misses = args.misses_per_round * (args.rounds + 1)
            ids = await seed_characters(db, misses)
            await seed_world(db, args.entities)
            await analyze(db)
            print(
                f"seeded {len(ids)} characters, {args.entities} entities "
                f"in {time.perf_counter() - t:.1f}s"
            )
            fresh = iter(ids[64:])  # the copies: never read before

            def uncached() -> list[tuple[str, str]]:
                chosen = [next(fresh) for _ in range(args.misses_per_round)]
                return [(f"/v1/characters/{c}", auth[n % len(auth)]) for n, c in enumerate(chosen)]

            rng = random.Random(6)
            raw_get = [(f"/raw/characters/{rng.choice(ids)}", "") for _ in range(4_096)]
            raw_list = [("/raw/characters?limit=50", "")]
            lists = [("/v1/characters?limit=50", a) for a in auth]
            nearest = [
                (
                    f"/v1/world/nearest?x={rng.uniform(-WORLD_HALF, WORLD_HALF):.1f}"
                    f"&y={rng.uniform(-WORLD_HALF, WORLD_HALF):.1f}&k=10",
                    auth[n % len(auth)],
                )
                for n in range(NEAREST_POINTS)
            ]
            data_dir = tempfile.mkdtemp(prefix="vdm-bench-reads-")
            api_env = {
                **env,
                "VDM_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
                "VDM_REDIS_URL": REDIS_URL,
                "VDM_REDIS_PREFIX": prefix,
                "VDM_JWT_SECRET": secret,
                "VDM_DATA_DIR": data_dir,
                "VDM_SCHEDULER": "false",
            }
            raw_env = {**env, "VDM_BENCH_RAW_DSN": _dsn(db)}
            try:
                with serve("visualdm.app:create_app_from_env", api_env) as (_, seconds):
                    startup["rebuild"] = seconds
                print(f"start-up with no snapshot (bulk rebuild): {seconds:.2f}s")
                if not (Path(data_dir) / "spatial.snapshot").exists():
                    raise RuntimeError("the server wrote no snapshot when it stopped")
                with (
                    serve("visualdm.app:create_app_from_env", api_env) as (api, seconds),
                    serve("bench._bare:create_app", env, "/bare") as (bare, _),
                    serve("bench._raw:create_app", raw_env) as (raw, _),
                ):
                    startup["snapshot"] = seconds
                    print(f"start-up from the snapshot: {seconds:.2f}s")
                    plan: list[tuple[str, str, Callable[[], list[tuple[str, str]]]]] = [
                        ("bare", bare, lambda: [("/bare", "")]),
                        ("raw_get", raw, lambda: raw_get),
                        ("uncached_get", api, uncached),
                        ("raw_list", raw, lambda: raw_list),
                        ("list", api, lambda: lists),
                        ("nearest", api, lambda: nearest),
                    ]
                    for _name, base, items in plan:
                        await asyncio.to_thread(load, base, items(), args.warmup)
                    for n in range(args.rounds):
                        for name, base, items in plan:
                            result = await asyncio.to_thread(load, base, items(), args.seconds)
                            runs.setdefault(name, []).append(result)
                            print(f"round {n + 1}: {name} {result}")
                            if name == "uncached_get" and result.requests > args.misses_per_round:
                                print(
                                    "  warning: more requests than distinct characters; "
                                    "raise --misses-per-round"
                                )
            finally:
                await drop_keys(prefix)

    asyncio.run(measure())

    def rps(name: str) -> float:
        return statistics.median(r.rps for r in runs[name])

    def per_round(a: str, b: str) -> list[float]:
        return [_ratio(x.rps, y.rps) for x, y in zip(runs[a], runs[b], strict=True)]

    errors = sum(r.errors for results in runs.values() for r in results)
    p99 = {
        f"{name}_p99_ms": round(statistics.median(r.p99_ms for r in rs), 1)
        for name, rs in runs.items()
    }
    print(
        json.dumps(
            {
                "raw_get_rps": round(rps("raw_get")),
                "uncached_get_rps": round(rps("uncached_get")),
                "uncached_ratio": _ratio(rps("uncached_get"), rps("raw_get")),
                "raw_list_rps": round(rps("raw_list")),
                "list_rps": round(rps("list")),
                "list_ratio": _ratio(rps("list"), rps("raw_list")),
                "bare_rps": round(rps("bare")),
                "nearest_rps": round(rps("nearest")),
                "nearest_ratio": _ratio(rps("nearest"), rps("bare")),
                "startup_s_1m": round(startup["snapshot"], 2),
                "errors": errors,
                "startup_rebuild_s": round(startup["rebuild"], 2),
                "entities": args.entities,
                **p99,
                "uncached_ratio_per_round": per_round("uncached_get", "raw_get"),
                "list_ratio_per_round": per_round("list", "raw_list"),
                "nearest_ratio_per_round": per_round("nearest", "bare"),
            }
        )
    )
    exit_if_errors(errors)


if __name__ == "__main__":
    main()
