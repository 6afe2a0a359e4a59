"""Audit tables: the log itself and the single-row head of its hash chain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import CheckConstraint, FetchedValue, Index, SmallInteger, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base
from visualdm.db.types import Id, Json, UTCDateTime

FORM_PARSED = 1
"""Entries sealed before 0003: their hash covers the parsed `changes` (storage could rewrite)."""
FORM_STORED = 2
"""Entries whose hash covers the stored text of `changes` byte for byte."""


class AuditEntry(Base):
    """One audited operation. `personal` may be erased; the chain covers only its digest.

    `seq` is given by the database at insert (module roles insert without RETURNING, having no
    SELECT on this table); `chain_seq`, `prev_hash` and `hash` are set when the sealer chains
    the entry, in the order it finds committed entries.
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_entity", "entity", "entity_id"),
        Index("ix_audit_log_actor_user_id", "actor_user_id"),
        # The sealer's scan: the few entries not chained yet, oldest first.
        Index(
            "ix_audit_log_unsealed",
            "seq",
            postgresql_where=text("chain_seq IS NULL"),
            sqlite_where=text("chain_seq IS NULL"),
        ),
        # Module roles may insert but not read: never ask for the new key back.
        {"implicit_returning": False},
    )

    # Given by the database (a sequence on PostgreSQL, the rowid on SQLite): FetchedValue keeps
    # SQLAlchemy from asking for it first, which would cost a round trip per entry.
    seq: Mapped[int] = mapped_column(
        Id, primary_key=True, autoincrement=False, server_default=FetchedValue()
    )
    chain_seq: Mapped[int | None] = mapped_column(Id, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    actor_user_id: Mapped[int | None] = mapped_column(Id)
    actor_system: Mapped[str | None] = mapped_column(String(64))
    module: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(32))
    entity_id: Mapped[str | None] = mapped_column(String(64))
    # Text, not JSON: JSONB rewrites numbers (1e16 becomes 10000000000000000), and the hash
    # must cover exactly what is stored.
    changes_text: Mapped[str] = mapped_column("changes", Text)
    personal: Mapped[dict[str, Any] | None] = mapped_column(Json)
    personal_digest: Mapped[str | None] = mapped_column(String(64))
    form: Mapped[int] = mapped_column(SmallInteger, default=FORM_STORED, server_default="2")
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))

    @property
    def changes(self) -> dict[str, Any]:
        """The recorded changes, parsed."""
        parsed: dict[str, Any] = json.loads(self.changes_text)
        return parsed


class AuditChainHead(Base):
    """The last sealed link of the chain; only the sealer reads or moves it."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    last_seq: Mapped[int] = mapped_column(Id)
    last_hash: Mapped[str] = mapped_column(String(64))


@dataclass(frozen=True, slots=True)
class PendingAudit:
    """An entry recorded during a unit of work, inserted (unsealed) just before commit."""

    occurred_at: datetime
    actor_user_id: int | None
    actor_system: str | None
    module: str | None
    action: str
    entity: str
    entity_id: str | None
    changes_text: str
    personal: dict[str, Any] | None
