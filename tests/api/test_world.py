"""The world routes over HTTP and the live WebSocket: roles, queries, enter/leave, backpressure."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, MutableMapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.support.api import ApiUser, api_client, make_user
from visualdm.app import create_app
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.ownership import SPATIAL_WS_QUEUE_MAX, Role
from visualdm.runtime import Runtime
from visualdm.spatial.index import Placed
from visualdm.spatial.sync import world_of


class Closed(Exception):
    """The server closed the WebSocket."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"closed {code}: {reason}")
        self.code = code
        self.reason = reason


class LiveClient:
    """An in-memory ASGI WebSocket client; `outbox` bounds what the server may send unread."""

    def __init__(self, app: FastAPI, query: str = "", outbox: int = 0) -> None:
        self.app = app
        self.query = query
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.outbox: asyncio.Queue[MutableMapping[str, Any]] = asyncio.Queue(outbox)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LiveClient:
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": "/v1/world/live",
            "raw_path": b"/v1/world/live",
            "root_path": "",
            "query_string": self.query.encode(),
            "headers": [],
            "server": ("test", 80),
            "client": ("127.0.0.1", 5000),
            "subprotocols": [],
        }
        await self.inbox.put({"type": "websocket.connect"})
        self.task = asyncio.create_task(self.app(scope, self.inbox.get, self.outbox.put))
        accepted = await asyncio.wait_for(self.outbox.get(), 5)
        assert accepted["type"] == "websocket.accept", accepted
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.inbox.put({"type": "websocket.disconnect", "code": 1000})
        assert self.task is not None
        await asyncio.wait_for(self.task, 5)

    async def send(self, data: object) -> None:
        await self.inbox.put({"type": "websocket.receive", "text": json.dumps(data)})

    async def receive(self) -> dict[str, Any]:
        message = await asyncio.wait_for(self.outbox.get(), 5)
        if message["type"] == "websocket.close":
            raise Closed(message.get("code", 1000), message.get("reason", ""))
        return dict(json.loads(message["text"]))


def _app(runtime: Runtime) -> FastAPI:
    app = create_app(runtime=runtime)
    app.state.runtime = runtime
    return app


@dataclass
class World:
    client: httpx.AsyncClient
    runtime: Runtime
    gm: ApiUser
    player: ApiUser
    admin: ApiUser


@pytest.fixture
async def w(database: Database, clock: FrozenClock) -> AsyncIterator[World]:
    async with api_client(database, clock) as (client, runtime, _app):
        yield World(
            client,
            runtime,
            await make_user(runtime, "gamemaster", Role.GM),
            await make_user(runtime, "playerone", Role.PLAYER),
            await make_user(runtime, "adminone", Role.ADMIN),
        )


async def _place(w: World, **body: object) -> dict[str, object]:
    payload = {"kind": "house", "x": 0.0, "y": 0.0, "width": 4.0, "height": 4.0, **body}
    r = await w.client.post("/v1/world/entities", json=payload, headers=w.gm.headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


@pytest.mark.parametrize(("role", "write_status"), [("gm", 201), ("player", 403), ("admin", 403)])
async def test_everyone_reads_the_world_and_only_game_masters_write_it(
    w: World, clock: FrozenClock, role: str, write_status: int
) -> None:
    who: ApiUser = getattr(w, role)
    made = await _place(w)
    eid = str(made["key"]).split(":")[1]
    r = await w.client.post(
        "/v1/world/entities",
        json={"kind": "tree", "x": 50.0, "y": 0.0, "width": 1.0, "height": 1.0},
        headers=who.headers,
    )
    assert r.status_code == write_status
    clock.advance(timedelta(seconds=1))
    put = await w.client.put(f"/v1/world/entities/{eid}", json={"x": 9.0}, headers=who.headers)
    assert put.status_code == (200 if role == "gm" else 403)
    got = await w.client.get(f"/v1/world/entities/{eid}", headers=who.headers)
    assert got.status_code == 200
    found = await w.client.get(
        "/v1/world/entities",
        params={"min_x": -100, "min_y": -100, "max_x": 100, "max_y": 100},
        headers=who.headers,
    )
    assert found.json()["count"] == (2 if role == "gm" else 1)
    delete = await w.client.delete(f"/v1/world/entities/{eid}", headers=who.headers)
    assert delete.status_code == (204 if role == "gm" else 403)
    assert (
        await w.client.get("/v1/world/entities", params={"x": 0, "y": 0, "r": 1})
    ).status_code == 401


async def test_queries_validate_and_answer_radius_nearest_and_path(
    w: World, clock: FrozenClock
) -> None:
    await _place(w)
    await _place(w, kind="tree", x=20.0, is_solid=False)
    h = w.player.headers
    r = await w.client.get("/v1/world/entities", params={"x": 0, "y": 10, "r": 8.1}, headers=h)
    assert [e["kind"] for e in r.json()["items"]] == ["house"]
    n = await w.client.get(
        "/v1/world/nearest", params={"x": 30, "y": 0, "k": 2, "kind": "tree"}, headers=h
    )
    assert [e["kind"] for e in n.json()["items"]] == ["tree"]
    assert n.json()["items"][0]["distance"] == pytest.approx(8.0)
    p = await w.client.get(
        "/v1/world/path", params={"x0": -10, "y0": 0, "x1": 30, "y1": 0}, headers=h
    )
    assert p.json()["line_of_sight"] is False
    assert [hit["entity"]["kind"] for hit in p.json()["hits"]] == ["house", "tree"]
    for params in (
        {"x": 0, "y": 0},
        {"min_x": 5, "min_y": 0, "max_x": 1, "max_y": 1},
        {"x": 0, "y": 0, "r": -1},
    ):
        bad = await w.client.get("/v1/world/entities", params=params, headers=h)
        assert bad.status_code == 422, params
    outside = await w.client.post(
        "/v1/world/entities",
        json={"kind": "house", "x": 5e6, "y": 0, "width": 1, "height": 1},
        headers=w.gm.headers,
    )
    assert outside.status_code == 422


async def test_a_character_move_reaches_the_index_through_the_event_bus(w: World) -> None:
    await world_of(w.runtime)
    c = await w.client.post(
        "/v1/characters", json={"name": "Aria", "race": "elf"}, headers=w.player.headers
    )
    cid = c.json()["id"]
    moved = await w.client.put(
        f"/v1/characters/{cid}/position", json={"x": 100.0, "y": 200.0}, headers=w.player.headers
    )
    assert moved.status_code == 200
    near = await w.client.get(
        "/v1/world/nearest", params={"x": 100, "y": 199, "k": 1}, headers=w.player.headers
    )
    assert near.json()["items"][0]["key"] == f"character:{cid}"
    await w.client.delete(f"/v1/characters/{cid}", headers=w.player.headers)
    gone = await w.client.get(
        "/v1/world/entities", params={"x": 100, "y": 200, "r": 5}, headers=w.player.headers
    )
    assert gone.json()["count"] == 0


def _token(user: ApiUser) -> str:
    return user.headers["Authorization"].split(" ", 1)[1]


async def test_live_subscribers_get_enter_move_and_leave(w: World, clock: FrozenClock) -> None:
    world = await world_of(w.runtime)
    t0 = clock.now()

    def put(key: str, x: float, y: float, s: int) -> None:
        world.index.upsert(Placed(key, "npc", x, y, 1, 1, False, t0 + timedelta(seconds=s)))

    put("entity:90", 5, 5, 0)
    async with LiveClient(_app(w.runtime)) as ws:
        await ws.send({"token": _token(w.player)})
        assert await ws.receive() == {"type": "ready"}
        await ws.send({"area": [0, 0, 10, 10]})
        assert (await ws.receive())["type"] == "enter"
        put("entity:90", 6, 6, 1)
        msg = await ws.receive()
        assert (msg["type"], msg["entity"]["x"]) == ("move", 6.0)
        put("entity:90", 60, 6, 2)
        msg = await ws.receive()
        assert (msg["type"], msg["key"], msg["reason"]) == ("leave", "entity:90", "moved_out")
        put("entity:90", 9, 9, 3)
        assert (await ws.receive())["type"] == "enter"
        await ws.send({"area": [100, 100, 110, 110]})
        msg = await ws.receive()
        assert (msg["type"], msg["reason"]) == ("leave", "area_moved")
        world.index.remove("entity:90", t0 + timedelta(seconds=4))
        await ws.send({"area": [0, 0, 10, 10]})
        await asyncio.sleep(0.05)
        put("entity:91", 1, 1, 5)
        msg = await ws.receive()
        assert (msg["type"], msg["entity"]["key"]) == ("enter", "entity:91")
        world.index.remove("entity:91", t0 + timedelta(seconds=6))
        msg = await ws.receive()
        assert (msg["type"], msg["reason"]) == ("leave", "removed")


async def test_live_refuses_clients_without_a_valid_token(w: World) -> None:
    async with LiveClient(_app(w.runtime), "token=nonsense") as ws:
        with pytest.raises(Closed) as closed:
            await ws.receive()
        assert closed.value.code == 1008


async def test_a_slow_live_client_is_dropped_not_buffered(w: World, clock: FrozenClock) -> None:
    world = await world_of(w.runtime)
    t0 = clock.now()
    # The client reads nothing while the burst arrives: the server may hand it one message.
    async with LiveClient(_app(w.runtime), f"token={_token(w.gm)}", outbox=1) as ws:
        assert await ws.receive() == {"type": "ready"}
        await ws.send({"area": [-50, -50, 50, 50]})
        await asyncio.sleep(0.05)
        for i in range(SPATIAL_WS_QUEUE_MAX * 4):
            world.index.upsert(
                Placed("entity:7", "npc", i % 40, 0, 1, 1, False, t0 + timedelta(seconds=i))
            )
            if i % 50 == 0:
                await asyncio.sleep(0)
        received = 0

        async def drain() -> None:
            nonlocal received
            while True:
                await ws.receive()
                received += 1

        with pytest.raises(Closed) as closed:
            await drain()
        assert closed.value.code == 1013
        assert "too slow" in closed.value.reason
        assert received <= SPATIAL_WS_QUEUE_MAX + 2
    assert not world.subscriptions
