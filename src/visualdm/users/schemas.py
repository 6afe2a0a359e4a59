"""Pydantic schemas of the users domain: what callers send and what they get back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from visualdm.ownership import PASSWORD_MAX_LENGTH, Role

# ASCII only: Python's and the databases' lower() agree on it, so case-insensitive uniqueness
# holds everywhere, and look-alike Unicode names cannot impersonate others.
Username = Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
Email = Annotated[str, Field(max_length=254, pattern=r"^[^@\s\x00]+@[^@\s\x00]+\.[^@\s\x00]+$")]
Password = Annotated[SecretStr, Field(min_length=1, max_length=PASSWORD_MAX_LENGTH)]


class UserCreate(BaseModel):
    """A new account: registration (always a player) or created by an admin or the CLI."""

    model_config = ConfigDict(extra="forbid")

    username: Username
    password: Password
    email: Email | None = None


class UserUpdate(BaseModel):
    """What an admin may change on an account; omitted fields stay as they are."""

    model_config = ConfigDict(extra="forbid")

    roles: list[Role] | None = Field(default=None, min_length=1)
    is_active: bool | None = None


class PasswordChange(BaseModel):
    """A password change; `current_password` is required when users change their own."""

    model_config = ConfigDict(extra="forbid")

    current_password: SecretStr | None = None
    new_password: Password


class LoginRequest(BaseModel):
    """Credentials for a login."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str, Field(min_length=1, max_length=64)]
    # Looser than Password: an over-long guess is still a login attempt, audited and refused.
    password: Annotated[SecretStr, Field(min_length=1, max_length=4 * PASSWORD_MAX_LENGTH)]


class UserRead(BaseModel):
    """An account as callers see it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    email: str | None
    roles: list[Role]
    is_active: bool
    created_at: datetime
    updated_at: datetime
    last_seen_at: datetime | None
    deleted_at: datetime | None


class AccessToken(BaseModel):
    """A bearer token and when it expires."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_at: datetime


class AuditRecord(BaseModel):
    """An audit entry about the user, as included in a data export."""

    model_config = ConfigDict(from_attributes=True)

    seq: int
    occurred_at: datetime
    actor_user_id: int | None
    actor_system: str | None
    action: str
    entity: str
    entity_id: str | None
    changes: dict[str, Any]
    personal: dict[str, Any] | None


class UserExport(BaseModel):
    """Everything stored about one user (GDPR art. 15/20); other domains add `sections`."""

    account: UserRead
    audit: list[AuditRecord]
    sections: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)


class TokenResponse(BaseModel):
    """A login's answer (RFC 6749 5.1): the bearer token and its lifetime in seconds."""

    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth token type, not a secret)
    expires_in: int
    expires_at: datetime
