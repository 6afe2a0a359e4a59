"""ORM model of the characters table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from visualdm.db.types import Id, Json, UTCDateTime

ABILITIES = ("strength", "dexterity", "constitution", "intelligence", "wisdom", "charisma")


class Character(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    """A player character or NPC: attributes, base stats, derived attributes and position."""

    __tablename__ = "characters"
    __table_args__ = (
        CheckConstraint("level BETWEEN 1 AND 30", name="level_range"),
        CheckConstraint("xp >= 0", name="xp_non_negative"),
        CheckConstraint("gold >= 0", name="gold_non_negative"),
        CheckConstraint("max_hp >= 1", name="max_hp_positive"),
        CheckConstraint("armor_class >= 0", name="armor_class_non_negative"),
        CheckConstraint("speed >= 0", name="speed_non_negative"),
        CheckConstraint("length(name) >= 1", name="name_not_empty"),
        *(CheckConstraint(f"{a} BETWEEN 1 AND 30", name=f"{a}_range") for a in ABILITIES),
        Index("ix_characters_owner_live", "owner_id", "deleted_at"),
        Index("ix_characters_last_active_at", "last_active_at"),
    )

    owner_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(100))
    race: Mapped[str] = mapped_column(String(50))
    background: Mapped[str] = mapped_column(String(50), default="")
    character_class: Mapped[str] = mapped_column(String(50), default="")
    level: Mapped[int] = mapped_column(default=1)
    xp: Mapped[int] = mapped_column(default=0)
    gold: Mapped[int] = mapped_column(default=0)
    strength: Mapped[int] = mapped_column(default=10)
    dexterity: Mapped[int] = mapped_column(default=10)
    constitution: Mapped[int] = mapped_column(default=10)
    intelligence: Mapped[int] = mapped_column(default=10)
    wisdom: Mapped[int] = mapped_column(default=10)
    charisma: Mapped[int] = mapped_column(default=10)
    max_hp: Mapped[int] = mapped_column(default=10)
    hp: Mapped[int] = mapped_column(default=10)
    armor_class: Mapped[int] = mapped_column(default=10)
    speed: Mapped[int] = mapped_column(default=30)
    inventory: Mapped[list[Any]] = mapped_column(Json, default=list)
    derived: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    x: Mapped[float | None] = mapped_column(Float)
    y: Mapped[float | None] = mapped_column(Float)
    position_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_active_at: Mapped[datetime] = mapped_column(UTCDateTime)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
