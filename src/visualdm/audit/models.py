"""Audit tables: the log itself and the single-row head of its hash chain."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base
from visualdm.db.types import Id, Json, UTCDateTime


class AuditEntry(Base):
    """One audited operation. `personal` may be erased; the chain covers only its digest."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity", "entity_id"),
        Index("ix_audit_log_actor_user_id", "actor_user_id"),
    )

    # The chain position is the key: given by the writer, so INSERT needs no RETURNING (and no
    # SELECT privilege, which module roles do not have on this table).
    seq: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Id)
    actor_system: Mapped[str | None] = mapped_column(String(64))
    module: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict[str, Any]] = mapped_column(Json)
    personal: Mapped[dict[str, Any] | None] = mapped_column(Json)
    personal_digest: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainHead(Base):
    """The last link of the chain; locking it orders appends across processes."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(Id)
    last_hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True, slots=True)
class PendingAudit:
    """An entry recorded during a unit of work, appended to the chain just before commit."""

    occurred_at: datetime
    actor_user_id: int | None
    actor_system: str | None
    module: str | None
    action: str
    entity: str
    entity_id: str | None
    changes: dict[str, Any]
    personal: dict[str, Any] | None
