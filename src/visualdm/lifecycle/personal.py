"""Erasing personal data from the audit log (spec 2.5): the chain covers only its digest."""

from __future__ import annotations

from sqlalchemy import and_, null, or_, update

from visualdm.audit.models import AuditEntry
from visualdm.db.unit_of_work import UnitOfWork
from visualdm.ownership import Module
from visualdm.users.service import ENTITY


async def erase_personal_audit(uow: UnitOfWork, user_ids: list[int]) -> int:
    """Null the personal fields of audit entries made by or about `user_ids`; returns how many.

    Runs as the Authentication System, whose role may update only that column (db/roles.py).
    """
    if not user_ids:
        return 0
    async with uow.acting_as(Module.AUTHENTICATION):
        result = await uow.session.execute(
            update(AuditEntry)
            .where(
                or_(
                    AuditEntry.actor_user_id.in_(user_ids),
                    and_(
                        AuditEntry.entity == ENTITY,
                        AuditEntry.entity_id.in_([str(i) for i in user_ids]),
                    ),
                ),
                AuditEntry.personal.is_not(None),
            )
            .values(personal=null())
            .execution_options(synchronize_session=False)
        )
    return int(result.rowcount)  # type: ignore[attr-defined]
