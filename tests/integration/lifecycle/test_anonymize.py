"""Anonymization (spec 2.5): a year inactive, personal data gone, the chain still verifies."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import or_, select
from typer.testing import CliRunner

from tests.conftest import UowFactory
from tests.integration.users.conftest import login, make_user, token_for
from visualdm.audit.models import AuditEntry
from visualdm.auth import service as auth_service
from visualdm.auth.context import AuthContext, build_auth
from visualdm.cli.main import app
from visualdm.clock import FrozenClock
from visualdm.db.engine import Database
from visualdm.errors import NotAuthenticated
from visualdm.lifecycle.anonymize import anonymize
from visualdm.ownership import YEAR
from visualdm.settings import Settings
from visualdm.users.models import User

SECOND = timedelta(seconds=1)


@pytest.fixture
def auth(clock: FrozenClock, tmp_path: Path) -> AuthContext:
    """The embedded AuthContext on the test clock."""
    return build_auth(Settings(data_dir=tmp_path), clock=clock)


async def _about(uow: UowFactory, user_id: int) -> list[AuditEntry]:
    async with uow() as u:
        rows = await u.session.scalars(
            select(AuditEntry).where(
                or_(
                    AuditEntry.actor_user_id == user_id,
                    (AuditEntry.entity == "user") & (AuditEntry.entity_id == str(user_id)),
                )
            )
        )
        return list(rows.all())


async def test_a_user_a_year_inactive_is_anonymized_and_can_no_longer_log_in(
    uow: UowFactory, clock: FrozenClock, auth: AuthContext, database: Database
) -> None:
    made = await make_user(uow, "zelda")
    token = await token_for(uow, auth, "zelda")
    seen = clock.now()
    assert any(e.personal for e in await _about(uow, made.id))

    report = await anonymize(uow, now=seen + YEAR - SECOND, store=auth.store)
    assert report.counts["user"] == 0
    report = await anonymize(uow, now=seen + YEAR + SECOND, store=auth.store)
    assert report.counts["user"] == 1

    async with uow() as u:
        user = await u.session.get(User, made.id)
    assert user is not None
    assert (user.username, user.email, user.password_hash) == (f"anon:{made.id}", None, None)
    assert user.is_active is False
    assert (await login(uow, auth, "zelda")).error is not None
    with pytest.raises(NotAuthenticated):
        await auth_service.principal_from_token(auth, token.access_token)
    entries = await _about(uow, made.id)
    assert [e for e in entries if e.personal is not None] == []
    assert [e.action for e in entries if e.action == "anonymize"] == ["anonymize"]
    assert (await anonymize(uow, now=seen + 2 * YEAR, store=auth.store)).counts["user"] == 0

    url = database.engine.url.render_as_string(hide_password=False)
    result = await asyncio.to_thread(
        CliRunner().invoke, app, ["audit", "verify"], env={"VDM_DATABASE_URL": url}
    )
    assert result.exit_code == 0, result.output
    assert "audit chain intact" in result.output
