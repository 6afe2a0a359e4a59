"""ORM model of the users table."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, CheckConstraint, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base, IdMixin, SoftDeleteMixin, TimestampMixin
from visualdm.db.types import UTCDateTime


class User(IdMixin, TimestampMixin, SoftDeleteMixin, Base):
    """A person who plays (player), runs the world (gm) or administers it (admin)."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("length(username) >= 3", name="username_length"),)

    username: Mapped[str] = mapped_column(String(64))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[str]] = mapped_column(JSON, default=list)
    is_active: Mapped[bool] = mapped_column(default=True)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    anonymized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# Usernames are unique regardless of case; lookups use the same expression so they use the index.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
