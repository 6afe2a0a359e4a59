"""HTTP and WebSocket routes of the Spatial System under /v1/world."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Query, Response, WebSocket, status
from starlette.requests import Request
from starlette.websockets import WebSocketDisconnect

from visualdm.access.principals import UserActor
from visualdm.api.deps import CurrentActor, RuntimeDep, UoW, current_actor, runtime_of
from visualdm.api.lean import json_response, lean_route, query_model
from visualdm.api.limits import EntityId
from visualdm.auth.service import principal_from_token
from visualdm.errors import DomainError, RuleViolation
from visualdm.ownership import SPATIAL_WS_AUTH_TIMEOUT
from visualdm.runtime import Runtime
from visualdm.spatial import queries, service
from visualdm.spatial.index import Box, Placed
from visualdm.spatial.schemas import (
    EntityList,
    EntityRead,
    MoveResult,
    NearestQuery,
    PathQuery,
    PathResult,
    QueryKind,
    WindowOrRadiusQuery,
    WorldEntityCreate,
    WorldEntityUpdate,
)
from visualdm.spatial.sync import world_of
from visualdm.spatial.world import Subscription, World, live_message

router = APIRouter(prefix="/v1/world", tags=["world"])


async def get_world(runtime: RuntimeDep) -> World:
    """This process's spatial world, started on first use."""
    return await world_of(runtime)


WorldDep = Annotated[World, Depends(get_world)]
Kinds = Annotated[list[QueryKind] | None, Query(max_length=20)]


@router.get("/entities")
async def search_entities(
    world: WorldDep,
    actor: CurrentActor,
    min_x: float | None = None,
    min_y: float | None = None,
    max_x: float | None = None,
    max_y: float | None = None,
    x: float | None = None,
    y: float | None = None,
    r: float | None = None,
    kind: Kinds = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> EntityList:
    """Entities in a window (`min_x..max_y`) or within `r` of (`x`, `y`), with their count."""
    # Served by the lean route below; this declaration documents it.
    q = WindowOrRadiusQuery(
        min_x=min_x, min_y=min_y, max_x=max_x, max_y=max_y, x=x, y=y, r=r, kind=kind, limit=limit
    )
    return _search(world, actor, q)


def _search(world: World, actor: UserActor, q: WindowOrRadiusQuery) -> EntityList:
    window = (q.min_x, q.min_y, q.max_x, q.max_y)
    if all(v is not None for v in window) and q.x is None and q.y is None and q.r is None:
        box = (float(q.min_x or 0), float(q.min_y or 0), float(q.max_x or 0), float(q.max_y or 0))
        return queries.search_window(world, actor=actor, box=box, kinds=q.kind, limit=q.limit)
    if q.x is not None and q.y is not None and q.r is not None and all(v is None for v in window):
        return queries.search_radius(
            world, actor=actor, x=q.x, y=q.y, r=q.r, kinds=q.kind, limit=q.limit
        )
    raise RuleViolation("give either min_x, min_y, max_x and max_y, or x, y and r")


@router.post("/entities", status_code=status.HTTP_201_CREATED)
async def create_entity(
    uow: UoW, world: WorldDep, actor: CurrentActor, body: WorldEntityCreate, response: Response
) -> EntityRead:
    """Place a world entity (game masters; runs as World Generation)."""
    made = await service.create_entity(uow, world, actor=actor, data=body)
    response.headers["Location"] = f"/v1/world/entities/{made.key.split(':')[1]}"
    return made


@router.get("/entities/{entity_id}")
async def get_entity(uow: UoW, actor: CurrentActor, entity_id: EntityId) -> EntityRead:
    """Read one world entity."""
    return await service.get_entity(uow, actor=actor, entity_id=entity_id)


@router.put("/entities/{entity_id}")
async def update_entity(
    uow: UoW, world: WorldDep, actor: CurrentActor, entity_id: EntityId, body: WorldEntityUpdate
) -> MoveResult:
    """Move or change an entity: last-writer-wins by `at`, pushed out of solid entities."""
    return await service.update_entity(uow, world, actor=actor, entity_id=entity_id, changes=body)


@router.delete("/entities/{entity_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_entity(
    uow: UoW, world: WorldDep, actor: CurrentActor, entity_id: EntityId
) -> None:
    """Delete a world entity at once."""
    await service.delete_entity(uow, world, actor=actor, entity_id=entity_id)


@router.get("/nearest")
async def nearest(
    world: WorldDep,
    actor: CurrentActor,
    x: float,
    y: float,
    k: Annotated[int, Query(ge=1)] = 1,
    kind: Kinds = None,
    max_distance: float | None = None,
) -> EntityList:
    """The k entities nearest to (x, y), nearest first, with their distances."""
    # Served by the lean route below; this declaration documents it.
    return queries.nearest(world, actor=actor, x=x, y=y, k=k, kinds=kind, max_distance=max_distance)


@router.get("/path")
async def path(
    world: WorldDep,
    actor: CurrentActor,
    x0: float,
    y0: float,
    x1: float,
    y1: float,
    ignore: Kinds = None,
) -> PathResult:
    """The entities the segment (x0, y0)-(x1, y1) crosses, and whether it has line of sight."""
    # Served by the lean route below; this declaration documents it.
    return queries.trace_path(world, actor=actor, start=(x0, y0), end=(x1, y1), ignore=ignore)


# --- the index reads, lean (api/lean.py) ----------------------------------------------------
# Pure in-memory reads: no unit of work, no dependency tree. The same checks run in the same
# order as on the documented routes: the world, authentication with the rate limit (one gate
# call), the query string, then the Spatial Management permission in `queries`.


async def _lean_search(request: Request) -> Response:
    world = await world_of(runtime_of(request))
    actor = await current_actor(request)
    q = query_model(request, WindowOrRadiusQuery, lists=("kind",))
    return json_response(_search(world, actor, q))


async def _lean_nearest(request: Request) -> Response:
    world = await world_of(runtime_of(request))
    actor = await current_actor(request)
    q = query_model(request, NearestQuery, lists=("kind",))
    found = queries.nearest_found(
        world, actor=actor, x=q.x, y=q.y, k=q.k, kinds=q.kind, max_distance=q.max_distance
    )
    return Response(_nearest_json(found), media_type="application/json")


def _nearest_json(found: list[tuple[Placed, float]]) -> bytes:
    """The JSON of `EntityList` for a nearest answer, encoded straight from the index entries.

    The entries were checked when they entered the index, so there is nothing to validate;
    building and serialising ten pydantic views cost more than the search. The shape is
    EntityList's (pinned against it by tests/api/test_world_lean.py).
    """
    items = [
        {
            "key": e.key,
            "kind": e.kind,
            "x": e.x,
            "y": e.y,
            "width": e.width,
            "height": e.height,
            "is_solid": e.is_solid,
            "updated_at": e.at,
            "name": None,
            "distance": d,
        }
        for e, d in found
    ]
    return orjson.dumps({"items": items, "count": len(items), "truncated": False}, option=_UTC_Z)


_UTC_Z = orjson.OPT_UTC_Z  # "Z" for UTC, as pydantic writes it


async def _lean_path(request: Request) -> Response:
    world = await world_of(runtime_of(request))
    actor = await current_actor(request)
    q = query_model(request, PathQuery, lists=("ignore",))
    traced = queries.trace_path(
        world, actor=actor, start=(q.x0, q.y0), end=(q.x1, q.y1), ignore=q.ignore
    )
    return json_response(traced)


LEAN_ROUTES = tuple(
    lean_route(path, endpoint, documented_as=path)
    for path, endpoint in (
        ("/v1/world/entities", _lean_search),
        ("/v1/world/nearest", _lean_nearest),
        ("/v1/world/path", _lean_path),
    )
)
"""Plain Starlette routes for the index reads, installed ahead of FastAPI's routers."""


# --- live updates over WebSocket ------------------------------------------------------------


def _area(message: Any) -> Box:
    raw = message.get("area") if isinstance(message, dict) else None
    if not isinstance(raw, list) or len(raw) != 4:
        raise RuleViolation('send {"area": [min_x, min_y, max_x, max_y]}')
    try:
        box = (float(raw[0]), float(raw[1]), float(raw[2]), float(raw[3]))
    except (TypeError, ValueError) as exc:
        raise RuleViolation("area coordinates must be numbers") from exc
    return queries.check_box(box)


def _move_area(world: World, sub: Subscription, area: Box) -> None:
    """Move `sub` to `area`, queueing enter/leave for entities that were in only one of them."""
    old = {} if sub.area is None else {e.key: e for e in world.index.window(sub.area)}
    new = {e.key: e for e in world.index.window(area)}
    sub.area = area
    for key in sorted(old.keys() - new.keys()):
        sub.offer({"type": "leave", "key": key, "reason": "area_moved", "entity": None})
    for key in sorted(new.keys() - old.keys()):
        message = live_message(area, None, new[key])
        if message is not None:
            sub.offer(message)


async def _authenticate(ws: WebSocket, runtime: Runtime, token: str | None) -> Any:
    if token is None:
        first = await asyncio.wait_for(
            ws.receive_json(), timeout=SPATIAL_WS_AUTH_TIMEOUT.total_seconds()
        )
        token = first.get("token") if isinstance(first, dict) else None
    if not isinstance(token, str) or not token:
        raise RuleViolation('authenticate first: ?token= or {"token": ...}')
    actor = await principal_from_token(runtime.auth, token)
    queries.check_may_read(actor)
    return actor


@router.websocket("/live")
async def live(ws: WebSocket, token: str | None = None) -> None:
    """Push every change inside the subscribed area, with explicit enter and leave events."""
    runtime: Runtime = ws.app.state.runtime
    await ws.accept()
    try:
        await _authenticate(ws, runtime, token)
    except (DomainError, TimeoutError, ValueError, WebSocketDisconnect):
        with contextlib.suppress(RuntimeError):
            await ws.close(code=1008, reason="authentication required")
        return
    world = await world_of(runtime)
    await ws.send_json({"type": "ready"})
    sub: Subscription | None = None
    try:
        sub = world.subscribe()
        reader = asyncio.create_task(_read_areas(ws, world, sub))
        writer = asyncio.create_task(_write(ws, sub))
        overflow = asyncio.create_task(sub.overflowed.wait())
        done, pending = await asyncio.wait(
            {reader, writer, overflow}, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if overflow in done:
            await ws.close(code=1013, reason="too slow: the update queue overflowed")
        elif reader in done and isinstance(reader.exception(), RuleViolation):
            await ws.close(code=1008, reason=str(reader.exception())[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        if sub is not None:
            world.unsubscribe(sub)


async def _read_areas(ws: WebSocket, world: World, sub: Subscription) -> None:
    while True:
        message = await ws.receive_json()
        _move_area(world, sub, _area(message))


async def _write(ws: WebSocket, sub: Subscription) -> None:
    while True:
        message = await sub.queue.get()
        await ws.send_json(message)
