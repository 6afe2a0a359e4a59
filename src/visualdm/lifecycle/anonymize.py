"""Anonymization (spec 2.5): users inactive for a year lose their personal data for good.

Username, email and password hash are replaced (the id stays, so references hold); the account
can no longer log in and its tokens are revoked; the personal fields of audit entries made by or
about the user are erased, which the hash chain allows because it covers only their digest.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select

from visualdm.audit import service as audit
from visualdm.auth.token_store import TokenStore
from visualdm.cache import hooks as cache
from visualdm.db.unit_of_work import OpenUow
from visualdm.lifecycle.base import LIFECYCLE, JobReport, NoProgress, Progress
from visualdm.lifecycle.personal import erase_personal_audit
from visualdm.ownership import LIFECYCLE_BATCH_SIZE, Domain, Module, policy
from visualdm.users.models import User
from visualdm.users.service import ENTITY


def anonymous_name(user_id: int) -> str:
    """The name an anonymized account gets; ':' is outside the username alphabet, so no one can
    register it."""
    return f"anon:{user_id}"


def cutoff(now: datetime) -> datetime:
    """Users last seen (or, never seen, created) before this instant are anonymized."""
    age = policy(Domain.AUTHENTICATION).archive_after_inactive
    assert age is not None
    return now - age


def _due(before: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        User.anonymized_at.is_(None),
        User.deleted_at.is_(None),
        func.coalesce(User.last_seen_at, User.created_at) < before,
    )


async def anonymize(
    open_uow: OpenUow,
    *,
    now: datetime,
    store: TokenStore | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
) -> JobReport:
    """Anonymize every user inactive past the registry's limit, batch by batch."""
    progress = progress or NoProgress()
    report = JobReport("anonymize", dry_run=dry_run)
    before = cutoff(now)
    async with open_uow() as u, u.acting_as(Module.AUTHENTICATION):
        total = int(
            await u.session.scalar(select(func.count()).select_from(User).where(*_due(before))) or 0
        )
    progress.start("anonymize user", total)
    report.add(ENTITY, total if dry_run else 0)
    if dry_run:
        progress.advance("anonymize user", total)
        return report
    after = 0
    while True:
        async with open_uow() as u:
            async with u.acting_as(Module.AUTHENTICATION):
                rows = list(
                    await u.session.scalars(
                        select(User)
                        .where(*_due(before), User.id > after)
                        .order_by(User.id)
                        .limit(LIFECYCLE_BATCH_SIZE)
                        .with_for_update()
                    )
                )
                for user in rows:
                    user.username = anonymous_name(user.id)
                    user.email = None
                    user.password_hash = None
                    user.is_active = False
                    user.anonymized_at = user.updated_at = u.clock.now()
                await u.session.flush()
            erased = await erase_personal_audit(u, [r.id for r in rows])
            async with u.acting_as(Module.AUTHENTICATION):
                for user in rows:
                    audit.record(
                        u,
                        actor=LIFECYCLE,
                        action="anonymize",
                        entity=ENTITY,
                        entity_id=user.id,
                        changes={
                            "fields": ["username", "email", "password_hash"],
                            "is_active": {"old": True, "new": False},
                            "inactive_since_before": before,
                        },
                    )
                    if store is not None:
                        await store.revoke_user(user.id)
                    cache.invalidate(u, [f"user:{user.id}"])
                if rows:
                    audit.record(
                        u,
                        actor=LIFECYCLE,
                        action="erase_personal",
                        entity="audit_log",
                        entity_id=None,
                        changes={"users": [r.id for r in rows], "entries": erased},
                    )
        if not rows:
            break
        after = rows[-1].id
        report.add(ENTITY, len(rows))
        progress.advance("anonymize user", len(rows))
    return report
