"""Declarative base with a constraint naming convention, and the mixins every table shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column

from visualdm.db.types import Id, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Base of every ORM class; constraints get stable names so migrations can refer to them."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class IdMixin:
    """An integer surrogate key."""

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)


class TimestampMixin:
    """created_at and updated_at, set by services from the injected clock."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SoftDeleteMixin:
    """deleted_at: a soft-deleted row is invisible to reads until restored or purged."""

    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=None, index=True)

    @property
    def is_deleted(self) -> bool:
        """Whether the row is soft-deleted."""
        return self.deleted_at is not None


class VersionMixin:
    """An optimistic-locking counter; SQLAlchemy checks and bumps it on every UPDATE."""

    version: Mapped[int] = mapped_column(default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        """Make `version` the version_id_col, so a stale UPDATE matches no row."""
        return {"version_id_col": cls.__table__.c.version}  # type: ignore[attr-defined]
