"""The domain error tree; imports nothing from visualdm.

DomainError
├── NotFound (LookupError)        the entity does not exist or is soft-deleted
├── Conflict                      a stale version, a duplicate or a wrong state
├── PermissionDenied              the actor (user role or system module) may not do this
├── NotAuthenticated              no valid credentials
├── RuleViolation (ValueError)    input or a domain rule is violated (cycle, bad score, ...)
├── RateLimited                   too many requests; carries retry_after seconds
└── Unavailable                   a backing service (database, Redis) cannot be reached

Only api/errors.py maps these to HTTP and cli.py to exit codes; domain code never names either.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error the domain raises on purpose; `code` is stable for clients."""

    code = "domain_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details

    def __str__(self) -> str:
        return self.message


class NotFound(DomainError, LookupError):
    """The entity does not exist, or is soft-deleted and so invisible."""

    code = "not_found"

    def __init__(self, entity: str, entity_id: object, message: str | None = None) -> None:
        super().__init__(message or f"{entity} {entity_id} not found", entity=entity, id=entity_id)
        self.entity = entity
        self.entity_id = entity_id


class Conflict(DomainError):
    """The write conflicts with the stored state (stale version, duplicate, wrong state)."""

    code = "conflict"


class VersionConflict(Conflict):
    """The row changed since the caller read it; `current_version` says what is stored now."""

    code = "version_conflict"

    def __init__(
        self, entity: str, entity_id: object, *, current_version: int | None, attempts: int = 1
    ) -> None:
        super().__init__(
            f"{entity} {entity_id} was changed by someone else (current version "
            f"{current_version}); re-read it and try again",
            entity=entity,
            id=entity_id,
            current_version=current_version,
            attempts=attempts,
        )
        self.current_version = current_version


class PermissionDenied(DomainError, PermissionError):
    """The actor, or the module acting for it, may not perform this action."""

    code = "permission_denied"


class NotAuthenticated(DomainError):
    """Credentials are missing, invalid, expired or revoked."""

    code = "not_authenticated"


class RuleViolation(DomainError, ValueError):
    """The input or the requested change breaks a domain rule."""

    code = "rule_violation"


class RateLimited(DomainError):
    """The caller exceeded its request budget; retry after `retry_after` seconds."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, limit: int, remaining: int = 0) -> None:
        super().__init__(message, retry_after=retry_after, limit=limit, remaining=remaining)
        self.retry_after = retry_after
        self.limit = limit
        self.remaining = remaining


class Unavailable(DomainError):
    """A backing service needed for this request cannot be reached."""

    code = "unavailable"
