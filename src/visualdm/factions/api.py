"""HTTP routes of the Faction System under /v1/factions: factions, members and relations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field

from visualdm.api.deps import CurrentActor, UoW
from visualdm.api.errors import problems
from visualdm.api.etag import expected_version, not_modified_response, set_etag
from visualdm.api.limits import ID_MAX, EntityId
from visualdm.factions import service
from visualdm.factions.schemas import (
    SCORE_MAX,
    SCORE_MIN,
    FactionCreate,
    FactionFilter,
    FactionPage,
    FactionRead,
    FactionUpdate,
    MembershipPage,
    MembershipRead,
    Rank,
    RelationRead,
    Stance,
)
from visualdm.ownership import PAGE_SIZE_MAX
from visualdm.storable import NUL_FREE

router = APIRouter(prefix="/v1/factions", tags=["factions"], responses=problems(401, 403, 429))


class MembershipCreate(BaseModel):
    """Request body of joining a character to a faction."""

    model_config = ConfigDict(extra="forbid")

    character_id: int = Field(ge=1, le=ID_MAX)
    rank: Rank = "member"


class RelationSet(BaseModel):
    """Request body of setting how two factions stand."""

    model_config = ConfigDict(extra="forbid")

    stance: Stance
    score: int = Field(ge=SCORE_MIN, le=SCORE_MAX)


@router.get("", responses=problems(422))
async def list_factions(
    uow: UoW,
    actor: CurrentActor,
    parent_id: Annotated[int | None, Query(ge=1, le=ID_MAX)] = None,
    name_contains: Annotated[str | None, Query(max_length=100, pattern=NUL_FREE)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=PAGE_SIZE_MAX)] = None,
) -> FactionPage:
    """List live factions, filtered, one page at a time."""
    filters = FactionFilter(parent_id=parent_id, name_contains=name_contains)
    return await service.list_factions(
        uow, actor=actor, filters=filters, cursor=cursor, limit=limit
    )


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(404, 422))
async def create_faction(
    uow: UoW, actor: CurrentActor, body: FactionCreate, response: Response
) -> FactionRead:
    """Create a faction, optionally under a live parent (game masters only)."""
    made = await service.create_faction(uow, actor=actor, data=body)
    response.headers["Location"] = f"/v1/factions/{made.id}"
    set_etag(response, made.version)
    return made


@router.get(
    "/{faction_id}",
    response_model=FactionRead,
    responses={304: {"description": "Not modified"}, **problems(404, 422)},
)
async def get_faction(
    uow: UoW, actor: CurrentActor, faction_id: EntityId, request: Request, response: Response
) -> Any:
    """Read one faction; honours If-None-Match."""
    got = await service.get_faction(uow, actor=actor, faction_id=faction_id)
    if (unchanged := not_modified_response(request, got.version)) is not None:
        return unchanged
    set_etag(response, got.version)
    return got


@router.patch("/{faction_id}", responses=problems(404, 409, 412, 422))
async def update_faction(
    uow: UoW,
    actor: CurrentActor,
    faction_id: EntityId,
    body: FactionUpdate,
    request: Request,
    response: Response,
) -> FactionRead:
    """Change some fields; with If-Match, only if the version still matches (else 412)."""
    got = await service.update_faction(
        uow,
        actor=actor,
        faction_id=faction_id,
        changes=body,
        expected_version=expected_version(request),
    )
    set_etag(response, got.version)
    return got


@router.delete(
    "/{faction_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 409, 422)
)
async def delete_faction(uow: UoW, actor: CurrentActor, faction_id: EntityId) -> None:
    """Soft-delete a faction (restorable until purged); its members and relations are hidden."""
    await service.delete_faction(uow, actor=actor, faction_id=faction_id)


@router.post("/{faction_id}/restore", responses=problems(404, 409, 422))
async def restore_faction(
    uow: UoW, actor: CurrentActor, faction_id: EntityId, response: Response
) -> FactionRead:
    """Bring back a soft-deleted faction."""
    got = await service.restore_faction(uow, actor=actor, faction_id=faction_id)
    set_etag(response, got.version)
    return got


@router.get("/{faction_id}/members", responses=problems(404, 422))
async def list_members(
    uow: UoW,
    actor: CurrentActor,
    faction_id: EntityId,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=PAGE_SIZE_MAX)] = None,
) -> MembershipPage:
    """List a faction's members of live characters, by join order, one page at a time."""
    return await service.list_members(
        uow, actor=actor, faction_id=faction_id, cursor=cursor, limit=limit
    )


@router.post(
    "/{faction_id}/members",
    status_code=status.HTTP_201_CREATED,
    responses=problems(404, 409, 422),
)
async def join_faction(
    uow: UoW, actor: CurrentActor, faction_id: EntityId, body: MembershipCreate
) -> MembershipRead:
    """Make a live character a member (409 if it already is one)."""
    return await service.join_faction(
        uow, actor=actor, faction_id=faction_id, character_id=body.character_id, rank=body.rank
    )


@router.delete(
    "/{faction_id}/members/{character_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problems(404, 422),
)
async def leave_faction(
    uow: UoW, actor: CurrentActor, faction_id: EntityId, character_id: EntityId
) -> None:
    """End a character's membership (404 if it is not a member)."""
    await service.leave_faction(uow, actor=actor, faction_id=faction_id, character_id=character_id)


@router.get("/{faction_id}/relations", responses=problems(404, 422))
async def list_relations(uow: UoW, actor: CurrentActor, faction_id: EntityId) -> list[RelationRead]:
    """List how a faction stands with every other live faction it has a relation with."""
    return await service.list_relations(uow, actor=actor, faction_id=faction_id)


@router.get("/{faction_id}/relations/{other_id}", responses=problems(404, 422))
async def get_relation(
    uow: UoW, actor: CurrentActor, faction_id: EntityId, other_id: EntityId
) -> RelationRead:
    """Read how two factions stand (404 if none was ever set; 422 for a faction and itself)."""
    return await service.get_relation(uow, actor=actor, faction_id=faction_id, other_id=other_id)


@router.put("/{faction_id}/relations/{other_id}", responses=problems(404, 409, 422))
async def set_relation(
    uow: UoW, actor: CurrentActor, faction_id: EntityId, other_id: EntityId, body: RelationSet
) -> RelationRead:
    """Set how two factions stand, the same from either side (422 for a faction and itself)."""
    return await service.set_relation(
        uow,
        actor=actor,
        faction_id=faction_id,
        other_id=other_id,
        stance=body.stance,
        score=body.score,
    )
