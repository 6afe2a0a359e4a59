"""The registry is the single source of policy numbers, and the committed doc matches it."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from visualdm import ownership as o
from visualdm.cli import app
from visualdm.ownership_doc import render_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_committed_ownership_doc_matches_the_registry() -> None:
    committed = (ROOT / "docs" / "data-ownership.md").read_text()
    assert committed == render_markdown(), (
        "docs/data-ownership.md drifted: run `visualdm ownership show > docs/data-ownership.md`"
    )


def test_spec_numbers_are_in_the_registry() -> None:
    assert o.cache_ttl(o.Domain.CHARACTER) == timedelta(minutes=5)
    assert o.cache_ttl(o.Domain.FACTION) == timedelta(minutes=15)
    assert o.cache_ttl(o.Domain.QUEST) == timedelta(minutes=10)
    assert o.cache_ttl(o.Domain.AUTHENTICATION) == timedelta(hours=24)
    assert o.retention(o.Domain.CHARACTER) == timedelta(days=30)
    assert o.retention(o.Domain.AUTHENTICATION) == timedelta(days=90)
    assert o.DOMAINS[o.Domain.QUEST].archive_after_inactive == timedelta(days=90)
    assert o.DOMAINS[o.Domain.FACTION].archive_after_inactive is None
    assert o.DOMAINS[o.Domain.SPATIAL].consistency_window == timedelta(seconds=1)
    assert o.MAX_WRITE_ATTEMPTS == 3
    assert o.API_RATE_LIMIT.requests_per_window == 100
    assert o.API_RATE_LIMIT.window == timedelta(minutes=1)


def test_ownership_show_renders_markdown_and_json() -> None:
    runner = CliRunner()
    md = runner.invoke(app, ["ownership", "show", "--format", "markdown"])
    assert md.exit_code == 0
    assert md.output == render_markdown()
    js = runner.invoke(app, ["ownership", "show", "--format", "json"])
    assert js.exit_code == 0
    doc = json.loads(js.output)
    assert doc["domains"]["character"]["cache_ttl"] == 300
    assert doc["max_write_attempts"] == 3
    bad = runner.invoke(app, ["ownership", "show", "--format", "yaml"])
    assert bad.exit_code == 2


POLICY_LITERAL = re.compile(r"timedelta\((days|hours|minutes|seconds)=\d+")


def test_no_policy_durations_outside_the_registry() -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in (ROOT / "src" / "visualdm").rglob("*.py")
        if path.name != "ownership.py" and POLICY_LITERAL.search(path.read_text())
    ]
    assert offenders == []
