"""HTTP routes of the quest assignment queue: enqueue (202 + status link) and poll."""

from __future__ import annotations

import os

from fastapi import APIRouter, Response, status
from pydantic import BaseModel, ConfigDict, Field

from visualdm.api.deps import CurrentActor, RuntimeDep, UoW
from visualdm.api.limits import ID_MAX, EntityId
from visualdm.lifecycle import queue
from visualdm.ownership import ASSIGNMENT_QUEUE_BATCH

router = APIRouter(tags=["quests"])


class AssignmentRequestCreate(BaseModel):
    """Ask for a quest to be given to a character; applied in arrival order per quest."""

    model_config = ConfigDict(extra="forbid")

    character_id: int = Field(ge=1, le=ID_MAX)


@router.post("/v1/quests/{quest_id}/assignment-requests", status_code=status.HTTP_202_ACCEPTED)
async def request_assignment(
    runtime: RuntimeDep,
    actor: CurrentActor,
    quest_id: EntityId,
    body: AssignmentRequestCreate,
    response: Response,
) -> queue.AssignmentRequestRead:
    """Queue the request, then drain the queue once; the body says where it stands now."""
    async with runtime.uow() as uow:
        queued = await queue.enqueue_assignment(
            uow, actor=actor, quest_id=quest_id, character_id=body.character_id
        )
    # Applying right away keeps the common case to one round trip; FIFO order is still the
    # queue's (a worker applies a quest's requests under the quest's lock, oldest first).
    await queue.process_pending(
        runtime.uow, worker_id=f"api-{os.getpid()}", limit=ASSIGNMENT_QUEUE_BATCH
    )
    async with runtime.uow() as uow:
        current = await queue.get_request(uow, actor=actor, request_id=queued.id)
    response.headers["Location"] = f"/v1/assignment-requests/{queued.id}"
    return current


@router.get("/v1/assignment-requests/{request_id}")
async def get_assignment_request(
    uow: UoW, actor: CurrentActor, request_id: EntityId
) -> queue.AssignmentRequestRead:
    """Where a queued assignment request stands."""
    return await queue.get_request(uow, actor=actor, request_id=request_id)
