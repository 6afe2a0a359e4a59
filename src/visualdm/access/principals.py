"""Principals: the user (with roles) or system job on whose behalf a module acts."""

from __future__ import annotations

from dataclasses import dataclass

from visualdm.ownership import Role


@dataclass(frozen=True, slots=True)
class UserActor:
    """An authenticated user; `roles` come from the verified token or the users table."""

    user_id: int
    roles: frozenset[Role]
    username: str | None = None

    def has(self, role: Role) -> bool:
        """Whether the user holds `role`."""
        return role in self.roles


@dataclass(frozen=True, slots=True)
class SystemActor:
    """An internal caller with service credentials: the CLI, a lifecycle job, the demo seeder."""

    name: str


Actor = UserActor | SystemActor
