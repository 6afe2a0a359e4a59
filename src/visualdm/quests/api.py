"""HTTP routes of the Quest System under /v1/quests: quests and their assignments."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, model_validator

from visualdm.api.deps import CurrentActor, UoW
from visualdm.api.errors import problems
from visualdm.api.etag import expected_version, not_modified_response, set_etag
from visualdm.api.limits import ID_MAX, EntityId
from visualdm.ownership import PAGE_SIZE_MAX
from visualdm.quests import service
from visualdm.quests.schemas import (
    AssignmentRead,
    ObjectiveId,
    QuestCreate,
    QuestFilter,
    QuestPage,
    QuestRead,
    QuestStatus,
    QuestUpdate,
)
from visualdm.storable import NUL_FREE

router = APIRouter(prefix="/v1/quests", tags=["quests"], responses=problems(401, 403, 429))


class AssignmentCreate(BaseModel):
    """Request body of giving a quest to a character."""

    model_config = ConfigDict(extra="forbid")

    character_id: int = Field(ge=1, le=ID_MAX)


class AssignmentUpdate(BaseModel):
    """Progress on objectives, a new status, or both (progress is applied first).

    `completed` checks every objective and grants the rewards; `failed` and `abandoned` free the
    character's slot. A closed assignment takes no further change (409).
    """

    model_config = ConfigDict(extra="forbid")

    progress: dict[ObjectiveId, Annotated[int, Field(ge=0, le=1_000_000)]] | None = Field(
        default=None, max_length=100
    )
    status: Literal["in_progress", "completed", "failed", "abandoned"] | None = None

    @model_validator(mode="after")
    def _something(self) -> AssignmentUpdate:
        if self.progress is None and self.status is None:
            raise ValueError("give progress, a status, or both")
        return self


@router.get("", responses=problems(422))
async def list_quests(
    uow: UoW,
    actor: CurrentActor,
    quest_status: Annotated[QuestStatus | None, Query(alias="status")] = None,
    title_contains: Annotated[str | None, Query(max_length=200, pattern=NUL_FREE)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int | None, Query(ge=1, le=PAGE_SIZE_MAX)] = None,
) -> QuestPage:
    """List live quests (drafts only for those who may edit them), one page at a time."""
    filters = QuestFilter(status=quest_status, title_contains=title_contains)
    return await service.list_quests(uow, actor=actor, filters=filters, cursor=cursor, limit=limit)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(422))
async def create_quest(
    uow: UoW, actor: CurrentActor, body: QuestCreate, response: Response
) -> QuestRead:
    """Create a quest (game masters only); 422 if it names a faction that does not exist."""
    made = await service.create_quest(uow, actor=actor, data=body)
    response.headers["Location"] = f"/v1/quests/{made.id}"
    set_etag(response, made.version)
    return made


@router.get(
    "/{quest_id}",
    response_model=QuestRead,
    responses={304: {"description": "Not modified"}, **problems(404, 422)},
)
async def get_quest(
    uow: UoW, actor: CurrentActor, quest_id: EntityId, request: Request, response: Response
) -> Any:
    """Read one quest; honours If-None-Match. A draft is 404 to players."""
    got = await service.get_quest(uow, actor=actor, quest_id=quest_id)
    if (unchanged := not_modified_response(request, got.version)) is not None:
        return unchanged
    set_etag(response, got.version)
    return got


@router.patch("/{quest_id}", responses=problems(404, 409, 412, 422))
async def update_quest(
    uow: UoW,
    actor: CurrentActor,
    quest_id: EntityId,
    body: QuestUpdate,
    request: Request,
    response: Response,
) -> QuestRead:
    """Change some fields; 409 for a status change the lifecycle forbids, 412 on stale If-Match."""
    got = await service.update_quest(
        uow,
        actor=actor,
        quest_id=quest_id,
        changes=body,
        expected_version=expected_version(request),
    )
    set_etag(response, got.version)
    return got


@router.delete(
    "/{quest_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problems(404, 409, 422)
)
async def delete_quest(uow: UoW, actor: CurrentActor, quest_id: EntityId) -> None:
    """Soft-delete a quest (restorable until purged); its assignments are hidden with it."""
    await service.delete_quest(uow, actor=actor, quest_id=quest_id)


@router.post("/{quest_id}/restore", responses=problems(404, 409, 422))
async def restore_quest(
    uow: UoW, actor: CurrentActor, quest_id: EntityId, response: Response
) -> QuestRead:
    """Bring back a soft-deleted quest."""
    got = await service.restore_quest(uow, actor=actor, quest_id=quest_id)
    set_etag(response, got.version)
    return got


@router.get("/{quest_id}/assignments", responses=problems(404, 422))
async def list_assignments(
    uow: UoW, actor: CurrentActor, quest_id: EntityId
) -> list[AssignmentRead]:
    """List every assignment of a quest, oldest first."""
    return await service.assignments_of_quest(uow, actor=actor, quest_id=quest_id)


@router.post(
    "/{quest_id}/assignments",
    status_code=status.HTTP_201_CREATED,
    responses=problems(404, 409, 422),
)
async def assign_quest(
    uow: UoW, actor: CurrentActor, quest_id: EntityId, body: AssignmentCreate
) -> AssignmentRead:
    """Give the quest to a character: 409 if taken already, full or not assignable, 422 if the
    character does not meet its requirements."""
    return await service.assign_quest(
        uow, actor=actor, quest_id=quest_id, character_id=body.character_id
    )


@router.patch("/{quest_id}/assignments/{character_id}", responses=problems(404, 409, 412, 422))
async def update_assignment(
    uow: UoW,
    actor: CurrentActor,
    quest_id: EntityId,
    character_id: EntityId,
    body: AssignmentUpdate,
) -> AssignmentRead:
    """Record progress and/or close the assignment (completed grants the quest's rewards)."""
    got: AssignmentRead | None = None
    if body.progress is not None or body.status == "in_progress":
        got = await service.update_progress(
            uow,
            actor=actor,
            quest_id=quest_id,
            character_id=character_id,
            progress=body.progress or {},
        )
    if body.status == "completed":
        got = await service.complete_assignment(
            uow, actor=actor, quest_id=quest_id, character_id=character_id
        )
    elif body.status == "failed":
        got = await service.fail_assignment(
            uow, actor=actor, quest_id=quest_id, character_id=character_id
        )
    elif body.status == "abandoned":
        got = await service.abandon(uow, actor=actor, quest_id=quest_id, character_id=character_id)
    assert got is not None  # the body's validator demands progress or a status
    return got
