"""The `visualdm` command line: serve, migrate, seed, verify, render the ownership registry."""

from __future__ import annotations

from visualdm.cli.main import app, main

__all__ = ["app", "main"]
