"""The cold-storage ledger: archive files (batches) and which records each one holds.

A batch row and the deletion of its records from the hot tables commit in one transaction, so
the ledger never disagrees with the hot tables; `archived_records` holds exactly the records that
live in cold storage now (restoring one removes its row).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from visualdm.db.base import Base
from visualdm.db.types import Id, UTCDateTime

BATCH_STATES = ("pending", "done", "abandoned")


class ArchiveBatch(Base):
    """One gzip JSON Lines file in cold storage; `done` once its rows left the hot tables."""

    __tablename__ = "archive_batches"
    __table_args__ = (
        CheckConstraint("state IN ('pending', 'done', 'abandoned')", name="state_known"),
        Index("ix_archive_batches_kind_state", "kind", "state"),
    )

    id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(32))
    path: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(16), default="pending")
    row_count: Mapped[int] = mapped_column(default=0)
    sha256: Mapped[str | None] = mapped_column(String(64))
    size_bytes: Mapped[int | None] = mapped_column(Id)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ArchivedRecord(Base):
    """A record that lives in cold storage now, and the batch (file) holding it."""

    __tablename__ = "archived_records"

    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    record_id: Mapped[int] = mapped_column(Id, primary_key=True, autoincrement=False)
    batch_id: Mapped[int] = mapped_column(
        Id, ForeignKey("archive_batches.id", ondelete="RESTRICT"), index=True
    )
    archived_at: Mapped[datetime] = mapped_column(UTCDateTime)
