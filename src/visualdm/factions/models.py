"""ORM models of factions, their pairwise relations and character membership."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from visualdm.db.types import Id, UTCDateTime


class Faction(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    """A faction; `parent_id` places it in a hierarchy that never forms a cycle."""

    __tablename__ = "factions"
    __table_args__ = (
        CheckConstraint("parent_id IS NULL OR parent_id <> id", name="not_own_parent"),
        CheckConstraint("length(name) >= 1", name="name_not_empty"),
    )

    name: Mapped[str] = mapped_column(String(100), index=True)
    description: Mapped[str] = mapped_column(Text, default="")
    parent_id: Mapped[int | None] = mapped_column(
        Id, ForeignKey("factions.id", ondelete="SET NULL"), index=True
    )


class FactionRelation(Base):
    """How two factions stand to each other; one row per pair, faction_a_id < faction_b_id."""

    __tablename__ = "faction_relations"
    __table_args__ = (
        CheckConstraint("faction_a_id < faction_b_id", name="ordered_pair"),
        CheckConstraint("score BETWEEN -100 AND 100", name="score_range"),
        CheckConstraint(
            "stance IN ('allied', 'friendly', 'neutral', 'unfriendly', 'hostile', 'war')",
            name="stance_known",
        ),
    )

    faction_a_id: Mapped[int] = mapped_column(
        Id, ForeignKey("factions.id", ondelete="CASCADE"), primary_key=True
    )
    faction_b_id: Mapped[int] = mapped_column(
        Id, ForeignKey("factions.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    stance: Mapped[str] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CharacterFaction(Base):
    """A character's membership of a faction, with rank and standing."""

    __tablename__ = "character_factions"
    __table_args__ = (
        UniqueConstraint("character_id", "faction_id", name="uq_character_factions_pair"),
        CheckConstraint("standing BETWEEN -100 AND 100", name="standing_range"),
        Index("ix_character_factions_faction_id", "faction_id"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    character_id: Mapped[int] = mapped_column(Id, ForeignKey("characters.id", ondelete="CASCADE"))
    faction_id: Mapped[int] = mapped_column(Id, ForeignKey("factions.id", ondelete="CASCADE"))
    rank: Mapped[str] = mapped_column(String(50), default="member")
    standing: Mapped[int] = mapped_column(default=0)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime)
