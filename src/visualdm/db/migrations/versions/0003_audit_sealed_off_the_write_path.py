"""audit: entries inserted unsealed with a database-given key, sealed later; changes kept as text

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 07:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_UNSEALED = sa.text("chain_seq IS NULL")


def upgrade() -> None:
    """Apply this revision."""
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("audit_log") as batch:
        batch.add_column(sa.Column("chain_seq", _ID, nullable=True))
        batch.add_column(sa.Column("form", sa.SmallInteger(), server_default="2", nullable=False))
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch.alter_column(
            "changes",
            existing_type=_JSON,
            type_=sa.Text(),
            existing_nullable=False,
            postgresql_using="changes::text",
        )
        batch.create_unique_constraint(op.f("uq_audit_log_chain_seq"), ["chain_seq"])
    # Entries written so far were chained at write time: their position is their key, and
    # their hash covers the parsed changes (form 1).
    op.execute("UPDATE audit_log SET chain_seq = seq, form = 1")
    if postgres:
        op.execute("CREATE SEQUENCE audit_log_seq_seq OWNED BY audit_log.seq")
        op.execute(
            "SELECT setval('audit_log_seq_seq', "
            "COALESCE((SELECT max(seq) FROM audit_log), 0) + 1, false)"
        )
        op.execute(
            "ALTER TABLE audit_log ALTER COLUMN seq SET DEFAULT nextval('audit_log_seq_seq')"
        )
    op.create_index(
        "ix_audit_log_unsealed",
        "audit_log",
        ["seq"],
        postgresql_where=_UNSEALED,
        sqlite_where=_UNSEALED,
    )


def downgrade() -> None:
    """Revert this revision (refused while entries await sealing: they have no chain yet)."""
    bind = op.get_bind()
    unsealed = bind.execute(sa.text("SELECT count(*) FROM audit_log WHERE chain_seq IS NULL"))
    if unsealed.scalar():
        raise RuntimeError("audit entries await sealing; run the sealer before downgrading")
    op.drop_index("ix_audit_log_unsealed", table_name="audit_log")
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE audit_log ALTER COLUMN seq DROP DEFAULT")
        op.execute("DROP SEQUENCE audit_log_seq_seq")
    # Revision 0002 chains by key: sealed positions become keys again.
    op.execute("UPDATE audit_log SET seq = -chain_seq")
    op.execute("UPDATE audit_log SET seq = -seq")
    with op.batch_alter_table("audit_log") as batch:
        batch.drop_constraint(op.f("uq_audit_log_chain_seq"), type_="unique")
        batch.alter_column(
            "changes",
            existing_type=sa.Text(),
            type_=_JSON,
            existing_nullable=False,
            postgresql_using="changes::jsonb",
        )
        batch.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch.drop_column("form")
        batch.drop_column("chain_seq")
