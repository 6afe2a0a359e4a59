"""What every lifecycle job shares: the system actor, progress reporting and the job report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from visualdm.access.principals import SystemActor

LIFECYCLE = SystemActor("lifecycle")
"""Who the jobs act as; each job runs as the owner module of the domain it changes."""


class Progress(Protocol):
    """Receives a job's progress: a task with a known total, advanced batch by batch."""

    def start(self, task: str, total: int) -> None: ...

    def advance(self, task: str, amount: int) -> None: ...


class NoProgress:
    """Progress that goes nowhere (library callers, the scheduler)."""

    def start(self, task: str, total: int) -> None:
        """Ignore the start of `task`."""

    def advance(self, task: str, amount: int) -> None:
        """Ignore progress on `task`."""


@dataclass
class JobReport:
    """What one job did (or, in a dry run, would do): rows per kind."""

    job: str
    dry_run: bool = False
    counts: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, amount: int) -> None:
        """Count `amount` more rows of `kind`."""
        self.counts[kind] = self.counts.get(kind, 0) + amount

    @property
    def total(self) -> int:
        """Rows of every kind."""
        return sum(self.counts.values())
