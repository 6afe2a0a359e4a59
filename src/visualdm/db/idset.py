"""Match a column against a batch of ids the cheapest way each database offers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import BigInteger, ColumnElement, any_, bindparam
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute


@dataclass(frozen=True)
class IdSet:
    """A batch of ids; `match(column)` is `column = ANY(:ids)` on PostgreSQL, `IN (...)` else.

    On PostgreSQL one array parameter replaces thousands of bound values, which the driver and
    the planner would otherwise process one by one for every batch statement.
    """

    ids: Sequence[int]
    dialect: str

    def match(
        self, column: ColumnElement[int] | ColumnElement[int | None] | QueryableAttribute[int]
    ) -> ColumnElement[bool]:
        """The condition `column` is one of the ids."""
        if self.dialect == "postgresql":
            param = bindparam(None, list(self.ids), type_=ARRAY(BigInteger()))
            return column == any_(param)
        return column.in_(list(self.ids))
