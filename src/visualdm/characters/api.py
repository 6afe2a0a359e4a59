"""HTTP routes of the Character System under /v1/characters."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from visualdm.api.deps import CurrentActor, UoW, current_actor, runtime_of
from visualdm.api.etag import document_response, expected_version, set_etag
from visualdm.api.lean import lean_route, path_id
from visualdm.api.limits import ID_MAX, EntityId
from visualdm.characters import service
from visualdm.characters.schemas import (
    CharacterCreate,
    CharacterFilter,
    CharacterPage,
    CharacterRead,
    CharacterUpdate,
    PositionResult,
    PositionUpdate,
)
from visualdm.factions import service as factions
from visualdm.factions.schemas import MembershipRead
from visualdm.quests import service as quests
from visualdm.quests.schemas import AssignmentRead
from visualdm.storable import NUL_FREE

router = APIRouter(prefix="/v1/characters", tags=["characters"])


@router.get("")
async def list_characters(
    uow: UoW,
    actor: CurrentActor,
    owner_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    race: Annotated[str | None, Query(max_length=50, pattern=NUL_FREE)] = None,
    name_contains: Annotated[str | None, Query(max_length=100, pattern=NUL_FREE)] = None,
    min_level: Annotated[int | None, Query(ge=1, le=30)] = None,
    max_level: Annotated[int | None, Query(ge=1, le=30)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> CharacterPage:
    """List live characters, filtered, one page at a time."""
    filters = CharacterFilter(
        owner_id=owner_id,
        race=race,
        name_contains=name_contains,
        min_level=min_level,
        max_level=max_level,
    )
    return await service.list_characters(
        uow, actor=actor, filters=filters, cursor=cursor, limit=limit
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_character(
    uow: UoW, actor: CurrentActor, body: CharacterCreate, response: Response
) -> CharacterRead:
    """Create a character (a player's own; a GM's for anyone)."""
    made = await service.create_character(uow, actor=actor, data=body)
    response.headers["Location"] = f"/v1/characters/{made.id}"
    set_etag(response, made.version)
    return made


@router.get(
    "/{character_id}",
    response_model=CharacterRead,
    responses={304: {"description": "Not modified"}},
)
async def get_character(character_id: EntityId, request: Request) -> Response:
    """Read one character; honours If-None-Match."""
    # Served by the lean route below for any decimal id; this declaration documents it.
    return await _read_character(request, character_id)


async def _read_character(request: Request, character_id: int) -> Response:
    # The hottest read, kept lean: authentication and the unit of work are called here rather
    # than resolved as dependencies (same checks, same order, a fraction of the overhead), and
    # the cached document goes out as it is, with no model round trip.
    actor = await current_actor(request)
    async with runtime_of(request).uow() as uow:
        document = await service.get_character_document(uow, actor=actor, character_id=character_id)
    return document_response(request, document)


async def _lean_read_character(request: Request) -> Response:
    return await _read_character(request, path_id(request, "character_id"))


LEAN_ROUTES = (
    lean_route(
        "/v1/characters/{character_id:decimal}",
        _lean_read_character,
        documented_as="/v1/characters/{character_id}",
    ),
)
"""Plain Starlette routes for this domain's hottest reads (api/lean.py), installed first."""


@router.patch("/{character_id}")
async def update_character(
    uow: UoW,
    actor: CurrentActor,
    character_id: EntityId,
    body: CharacterUpdate,
    request: Request,
    response: Response,
) -> CharacterRead:
    """Change some fields; with If-Match, only if the version still matches (else 412)."""
    got = await service.update_character(
        uow,
        actor=actor,
        character_id=character_id,
        changes=body,
        expected_version=expected_version(request),
    )
    set_etag(response, got.version)
    return got


@router.delete("/{character_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_character(uow: UoW, actor: CurrentActor, character_id: EntityId) -> None:
    """Soft-delete a character (restorable until purged)."""
    await service.delete_character(uow, actor=actor, character_id=character_id)


@router.post("/{character_id}/restore")
async def restore_character(
    uow: UoW, actor: CurrentActor, character_id: EntityId, response: Response
) -> CharacterRead:
    """Bring back a soft-deleted character."""
    got = await service.restore_character(uow, actor=actor, character_id=character_id)
    set_etag(response, got.version)
    return got


@router.put("/{character_id}/position")
async def set_position(
    uow: UoW, actor: CurrentActor, character_id: EntityId, body: PositionUpdate
) -> PositionResult:
    """Move a character; an update older than the stored one is ignored and reported."""
    return await service.set_position(
        uow, actor=actor, character_id=character_id, x=body.x, y=body.y, at=body.at
    )


@router.get("/{character_id}/quests")
async def list_character_quests(
    uow: UoW, actor: CurrentActor, character_id: EntityId
) -> list[AssignmentRead]:
    """The character's quest assignments (of live quests), oldest first."""
    return await quests.assignments_of_character(uow, actor=actor, character_id=character_id)


@router.get("/{character_id}/factions")
async def list_character_factions(
    uow: UoW, actor: CurrentActor, character_id: EntityId
) -> list[MembershipRead]:
    """The character's memberships of live factions."""
    return await factions.memberships_of(uow, actor=actor, character_id=character_id)
