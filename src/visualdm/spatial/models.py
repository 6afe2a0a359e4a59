"""ORM model of the world definition: the static entities World Generation places on the map."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Float, String
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base, IdMixin, TimestampMixin
from visualdm.db.types import UTCDateTime


class WorldEntity(IdMixin, TimestampMixin, Base):
    """A building, static object or NPC placed in the world; the R-tree is built from these rows."""

    __tablename__ = "world_entities"
    __table_args__ = (
        CheckConstraint("width > 0 AND height > 0", name="size_positive"),
        CheckConstraint("length(kind) >= 1", name="kind_not_empty"),
    )

    kind: Mapped[str] = mapped_column(String(32), index=True)
    name: Mapped[str] = mapped_column(String(100), default="")
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    width: Mapped[float] = mapped_column(Float)
    height: Mapped[float] = mapped_column(Float)
    is_solid: Mapped[bool] = mapped_column(default=True)
    position_updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
