"""ORM models of quests and their assignments to characters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from visualdm.db.types import Id, Json, UTCDateTime

QUEST_STATUSES = ("draft", "available", "active", "completed", "failed")
ASSIGNMENT_STATUSES = ("assigned", "in_progress", "completed", "failed", "abandoned")


class Quest(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    """A quest: objectives, requirements (level, factions), rewards (xp, gold, items, standing)."""

    __tablename__ = "quests"
    __table_args__ = (
        CheckConstraint(
            "status IN ('draft', 'available', 'active', 'completed', 'failed')", name="status_known"
        ),
        CheckConstraint("max_assignees IS NULL OR max_assignees >= 1", name="slots_positive"),
        CheckConstraint("length(title) >= 1", name="title_not_empty"),
        Index("ix_quests_status_live", "status", "deleted_at"),
        Index("ix_quests_last_active_at", "last_active_at"),
    )

    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="draft")
    objectives: Mapped[list[Any]] = mapped_column(Json, default=list)
    requirements: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    rewards: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    max_assignees: Mapped[int | None] = mapped_column(default=None)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_active_at: Mapped[datetime] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class CharacterQuest(Base):
    """A quest assigned to a character, with its status and progress per objective."""

    __tablename__ = "character_quests"
    __table_args__ = (
        UniqueConstraint("character_id", "quest_id", name="uq_character_quests_pair"),
        CheckConstraint(
            "status IN ('assigned', 'in_progress', 'completed', 'failed', 'abandoned')",
            name="status_known",
        ),
        Index("ix_character_quests_quest_id", "quest_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    character_id: Mapped[int] = mapped_column(Id, ForeignKey("characters.id", ondelete="CASCADE"))
    quest_id: Mapped[int] = mapped_column(Id, ForeignKey("quests.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="assigned")
    progress: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(default=1)

    __mapper_args__ = {"version_id_col": version}


REQUEST_STATUSES = ("pending", "applied", "rejected")


class QuestAssignmentRequest(Base):
    """A queued request to assign a quest (spec 5.2): applied strictly in id (arrival) order."""

    __tablename__ = "quest_assignment_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'applied', 'rejected')", name="status_known"),
        Index("ix_quest_assignment_requests_pending", "status", "quest_id", "id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    quest_id: Mapped[int] = mapped_column(Id, ForeignKey("quests.id", ondelete="CASCADE"))
    character_id: Mapped[int] = mapped_column(
        Id, ForeignKey("characters.id", ondelete="CASCADE"), index=True
    )
    actor_user_id: Mapped[int | None] = mapped_column(Id)
    actor_roles: Mapped[list[str]] = mapped_column(Json, default=list)
    actor_system: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    outcome: Mapped[str | None] = mapped_column(Text)
    assignment_id: Mapped[int | None] = mapped_column(Id)
    worker_id: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
