"""The quest assignment queue (spec 5.2): requests are applied strictly FIFO per quest.

Enqueuing takes a share lock on the quest row before the request gets its id, and a worker
applies a quest's requests only while holding that row's exclusive lock, taken with SKIP LOCKED.
So every request with a lower id has committed before a worker looks, arrival (id) order is
application order, and workers spread over quests without waiting for each other. On SQLite,
BEGIN IMMEDIATE serializes all of it. See docs/adr/0004-quest-assignment-queue.md.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select

from visualdm.access.policy import authorize
from visualdm.access.principals import Actor, SystemActor, UserActor
from visualdm.audit import service as audit
from visualdm.characters import service as characters
from visualdm.db.unit_of_work import OpenUow, UnitOfWork
from visualdm.errors import DomainError, NotFound
from visualdm.ownership import (
    ASSIGNMENT_QUEUE_BATCH,
    ASSIGNMENT_QUEUE_SCAN,
    Action,
    Module,
    Resource,
    Role,
)
from visualdm.quests import service as quests
from visualdm.quests.models import Quest, QuestAssignmentRequest

MANAGEMENT = Module.QUEST_MANAGEMENT
ENTITY = "quest_assignment_request"


class AssignmentRequestRead(BaseModel):
    """A queued request: pending, then applied (with the assignment) or rejected (with why)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)

    id: int
    quest_id: int
    character_id: int
    status: str
    outcome: str | None
    assignment_id: int | None
    requested_at: datetime
    processed_at: datetime | None


def _read(row: QuestAssignmentRequest) -> AssignmentRequestRead:
    return AssignmentRequestRead.model_validate(row)


def _actor_of(row: QuestAssignmentRequest) -> Actor:
    if row.actor_user_id is not None:
        return UserActor(row.actor_user_id, frozenset(Role(r) for r in row.actor_roles))
    return SystemActor(row.actor_system or "queue")


async def enqueue_assignment(
    uow: UnitOfWork, *, actor: Actor, quest_id: int, character_id: int
) -> AssignmentRequestRead:
    """Queue a request to give `quest_id` to `character_id`; NotFound if either is not live."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST_ASSIGNMENT, Action.CREATE)
        # The share lock orders this request after any batch a worker is applying (see above).
        quest = await uow.session.scalar(
            select(Quest.id)
            .where(Quest.id == quest_id, Quest.deleted_at.is_(None))
            .with_for_update(read=True)
        )
        if quest is None:
            raise NotFound("quest", quest_id)
        await characters.ensure_live(uow, [character_id])
        row = QuestAssignmentRequest(
            quest_id=quest_id,
            character_id=character_id,
            actor_user_id=actor.user_id if isinstance(actor, UserActor) else None,
            actor_roles=sorted(actor.roles) if isinstance(actor, UserActor) else [],
            actor_system=actor.name if isinstance(actor, SystemActor) else None,
            status="pending",
            requested_at=uow.clock.now(),
        )
        uow.session.add(row)
        await uow.session.flush()
        audit.record(
            uow,
            actor=actor,
            action="enqueue",
            entity=ENTITY,
            entity_id=row.id,
            changes={"quest_id": quest_id, "character_id": character_id},
        )
        return _read(row)


async def get_request(uow: UnitOfWork, *, actor: Actor, request_id: int) -> AssignmentRequestRead:
    """Return a queued request and its outcome; NotFound if there is none."""
    async with uow.acting_as(MANAGEMENT):
        authorize(actor, MANAGEMENT, Resource.QUEST_ASSIGNMENT, Action.READ)
        row = await uow.session.get(QuestAssignmentRequest, request_id, populate_existing=True)
        if row is None:
            raise NotFound(ENTITY, request_id)
        return _read(row)


async def _claim_quest(uow: UnitOfWork) -> int | None:
    """Lock a quest with pending requests that no other worker holds; its id, or None."""
    heads = (
        select(QuestAssignmentRequest.quest_id, func.min(QuestAssignmentRequest.id).label("head"))
        .where(QuestAssignmentRequest.status == "pending")
        .group_by(QuestAssignmentRequest.quest_id)
        .order_by("head")
        .limit(ASSIGNMENT_QUEUE_SCAN)
    )
    for quest_id, _ in (await uow.session.execute(heads)).all():
        got = await uow.session.scalar(
            select(Quest.id).where(Quest.id == quest_id).with_for_update(skip_locked=True)
        )
        if got is not None:
            return int(got)
    return None


async def _apply(uow: UnitOfWork, row: QuestAssignmentRequest, worker_id: str) -> None:
    try:
        async with uow.session.begin_nested():
            done = await quests.assign_quest(
                uow, actor=_actor_of(row), quest_id=row.quest_id, character_id=row.character_id
            )
        row.status, row.assignment_id, row.outcome = "applied", done.id, "assigned"
    except DomainError as exc:
        row.status, row.outcome = "rejected", exc.message
    row.worker_id, row.processed_at = worker_id, uow.clock.now()


async def process_pending(open_uow: OpenUow, *, worker_id: str, limit: int | None = None) -> int:
    """Apply pending requests, one quest per transaction, in arrival order; returns how many."""
    processed = 0
    while limit is None or processed < limit:
        async with open_uow() as u, u.acting_as(MANAGEMENT):
            quest_id = await _claim_quest(u)
            if quest_id is None:
                return processed
            take = (
                ASSIGNMENT_QUEUE_BATCH
                if limit is None
                else min(ASSIGNMENT_QUEUE_BATCH, limit - processed)
            )
            rows = list(
                await u.session.scalars(
                    select(QuestAssignmentRequest)
                    .where(
                        QuestAssignmentRequest.quest_id == quest_id,
                        QuestAssignmentRequest.status == "pending",
                    )
                    .order_by(QuestAssignmentRequest.id)
                    .limit(take)
                )
            )
            for row in rows:
                await _apply(u, row, worker_id)
            await u.session.flush()
            processed += len(rows)
    return processed
