"""Login cost on this machine: one Argon2id hash, and full logins per second (SQLite or PG).

A full login is authenticate() in its own unit of work (throttle, lookup, verify, token, audit)
with the registry's Argon2 parameters; run concurrently so hashing uses every core.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import create_async_engine

from bench._pg import bench_database
from visualdm.access.principals import SystemActor
from visualdm.auth import passwords
from visualdm.auth import service as auth_service
from visualdm.auth.context import build_auth
from visualdm.clock import SystemClock
from visualdm.db import migrate
from visualdm.db.engine import Database, create_database
from visualdm.db.unit_of_work import unit_of_work
from visualdm.ownership import ARGON2, Role
from visualdm.settings import Settings
from visualdm.users import service as users
from visualdm.users.schemas import UserCreate

PASSWORD = "a long enough passphrase"


def hash_ms(samples: int) -> float:
    """Median wall time of one verification, in milliseconds."""
    stored = passwords.hash_sync(PASSWORD)
    times = []
    for _ in range(samples):
        start = time.perf_counter()
        passwords.verify_sync(stored, PASSWORD)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def sqlite_logins(seconds: float, concurrency: int, directory: Path) -> float:
    """Logins per second on a fresh SQLite file."""
    url = f"sqlite+aiosqlite:///{directory / 'bench.db'}"
    engine = create_async_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    db = create_database(Settings(database_url=url))
    try:
        return await logins_per_second(db, seconds, concurrency, directory)
    finally:
        await db.dispose()


async def pg_logins(seconds: float, concurrency: int, directory: Path) -> float:
    """Logins per second on a fresh PostgreSQL database."""
    async with bench_database("auth", pool_size=concurrency) as db:
        return await logins_per_second(db, seconds, concurrency, directory)


async def logins_per_second(
    db: Database, seconds: float, concurrency: int, directory: Path
) -> float:
    """Successful logins per second with `concurrency` clients for `seconds`."""
    clock = SystemClock()
    auth = build_auth(Settings(data_dir=directory), clock=clock)
    names = [f"bench{i}" for i in range(concurrency)]
    for name in names:
        async with unit_of_work(db, clock=clock) as u:
            data = UserCreate(username=name, password=SecretStr(PASSWORD))
            await users.create_user(u, actor=SystemActor("bench"), data=data, roles=[Role.PLAYER])
    done = 0
    deadline = time.perf_counter() + seconds

    async def client(name: str) -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            async with unit_of_work(db, clock=clock) as u:
                result = await auth_service.authenticate(
                    u, auth=auth, username=name, password=PASSWORD, ip="127.0.0.1"
                )
            result.unwrap()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(n) for n in names))
    return done / (time.perf_counter() - start)


def main() -> None:
    """Print one JSON line with the measurements."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        run = pg_logins if args.postgres else sqlite_logins
        rate = asyncio.run(run(args.seconds, args.concurrency, Path(directory)))
    result = {
        "argon2": {"t": ARGON2.time_cost, "m_kib": ARGON2.memory_kib, "p": ARGON2.parallelism},
        "verify_ms_median": round(hash_ms(30), 1),
        "logins_per_second": round(rate, 1),
        "concurrency": args.concurrency,
        "database": "postgresql" if args.postgres else "sqlite",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
