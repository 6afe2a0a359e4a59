"""`visualdm users create` against a migrated SQLite file, as an operator would run it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.support.accounts import PASSWORD
from visualdm.cli import users as users_cli
from visualdm.cli.main import app
from visualdm.db.engine import create_database
from visualdm.settings import Settings
from visualdm.users import repository


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A fresh SQLite file, migrated with `visualdm db upgrade`."""
    env = {"VDM_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}", "VDM_DATA_DIR": str(tmp_path)}
    r = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert r.exit_code == 0, r.output
    return env


def _stored(env: dict[str, str], name: str) -> tuple[list[str], str | None, bool]:
    async def read() -> tuple[list[str], str | None, bool]:
        db = create_database(Settings(database_url=env["VDM_DATABASE_URL"]))
        try:
            async with db.sessions() as s:
                user = await repository.get_by_username(s, name)
                assert user is not None
                return list(user.roles), user.email, bool(user.password_hash)
        finally:
            await db.dispose()

    return asyncio.run(read())


def test_create_reads_the_password_from_standard_input(env: dict[str, str]) -> None:
    args = ["users", "create", "gm_one", "--role", "gm", "--email", "gm@example.test"]
    r = CliRunner().invoke(app, args, input=PASSWORD + "\n", env=env)
    assert r.exit_code == 0, r.output
    assert "created user gm_one" in r.output
    assert _stored(env, "gm_one") == (["gm"], "gm@example.test", True)


def test_create_prompts_twice_on_a_terminal(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(users_cli, "_interactive", lambda: True)
    typed = f"{PASSWORD}\n{PASSWORD}\n"
    r = CliRunner().invoke(
        app, ["users", "create", "root", "--role", "admin"], input=typed, env=env
    )
    assert r.exit_code == 0, r.output
    assert PASSWORD not in r.output  # hidden input is never echoed
    assert _stored(env, "root")[0] == ["admin"]


def test_create_refuses_duplicates_weak_passwords_and_unknown_roles(env: dict[str, str]) -> None:
    runner = CliRunner()
    ok = runner.invoke(app, ["users", "create", "alice"], input=PASSWORD, env=env)
    assert ok.exit_code == 0, ok.output
    assert _stored(env, "alice")[0] == ["player"]
    dup = runner.invoke(app, ["users", "create", "ALICE"], input=PASSWORD, env=env)
    assert dup.exit_code == 4  # Conflict
    weak = runner.invoke(app, ["users", "create", "bob"], input="short\n", env=env)
    assert weak.exit_code == 6  # RuleViolation: the password policy
    empty = runner.invoke(app, ["users", "create", "bob"], input="", env=env)
    assert empty.exit_code == 6
    role = runner.invoke(
        app, ["users", "create", "bob", "--role", "wizard"], input=PASSWORD, env=env
    )
    assert role.exit_code == 2  # usage error
