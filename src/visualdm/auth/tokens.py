"""HS256 access tokens: issue and verify (algorithm pinned, time from the injected clock).

Claims: sub (user id), roles, jti (for revocation), iat, exp = iat + the Authentication domain's
24 h TTL from the registry. Every defect (alg none, wrong key, expiry, tampering, garbage) is
NotAuthenticated, with no hint of which check failed.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import jwt

from visualdm.clock import Clock
from visualdm.errors import NotAuthenticated
from visualdm.ownership import TOKEN_CLOCK_SKEW, TOKEN_VERIFY_CACHE_SIZE, Domain, Role, cache_ttl
from visualdm.settings import Settings

ALGORITHM = "HS256"
MIN_SECRET_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash output
SECRET_FILE = ".visualdm-secret"  # noqa: S105 (a file name, not a secret)
_REQUIRED = ["sub", "roles", "jti", "iat", "exp"]


class InsecureConfiguration(RuntimeError):
    """The process may not start: a production secret is missing or too weak."""


@dataclass(frozen=True, slots=True)
class TokenClaims:
    """The verified content of an access token."""

    user_id: int
    roles: frozenset[Role]
    jti: str
    issued_at: datetime
    expires_at: datetime


def load_secret(settings: Settings) -> str:
    """Return the signing secret: configured, or (embedded mode only) generated once and kept.

    Raises InsecureConfiguration in production without `VDM_JWT_SECRET`, or with a short one.
    """
    if settings.jwt_secret is not None:
        secret = settings.jwt_secret.get_secret_value()
        if len(secret.encode()) < MIN_SECRET_BYTES:
            raise InsecureConfiguration(
                f"VDM_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes long"
            )
        return secret
    if settings.is_production:
        # Never fall back to a built-in or per-process secret: tokens would be forgeable or
        # would fail on every other API process.
        raise InsecureConfiguration(
            "VDM_JWT_SECRET is required in production (PostgreSQL + Redis); generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(48))'`"
        )
    return _embedded_secret(settings.data_dir / SECRET_FILE)


def _embedded_secret(path: Path) -> str:
    """Read the secret kept at `path`, creating it (mode 0600) on first run."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)  # tighten a copy made with a looser umask
        secret = path.read_text(encoding="ascii").strip()
        if len(secret) < MIN_SECRET_BYTES:
            raise InsecureConfiguration(f"{path} holds no usable secret; delete it") from None
        return secret
    secret = secrets.token_urlsafe(48)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secret + "\n")
    return secret


class TokenCodec:
    """Issues and verifies access tokens with one secret and the registry's lifetime."""

    def __init__(self, secret: str, *, clock: Clock, lifetime: timedelta | None = None) -> None:
        self._secret = secret
        self._clock = clock
        self.lifetime = lifetime or cache_ttl(Domain.AUTHENTICATION)
        # Time checks are ours (below) so they follow the injected clock, not time.time().
        self._jwt = jwt.PyJWT(
            options={
                "require": _REQUIRED,
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "enforce_minimum_key_length": True,
            }
        )
        # Only verified claims are remembered (lru_cache does not keep exceptions).
        self._verified = lru_cache(maxsize=TOKEN_VERIFY_CACHE_SIZE)(self._verify_signature)

    def issue(self, user_id: int, roles: frozenset[Role]) -> tuple[str, TokenClaims]:
        """Return a signed token for the user and its claims."""
        now = self._clock.now().replace(microsecond=0)
        claims = TokenClaims(
            user_id=user_id,
            roles=roles,
            jti=secrets.token_urlsafe(16),
            issued_at=now,
            expires_at=now + self.lifetime,
        )
        payload: dict[str, Any] = {
            "sub": str(user_id),
            "roles": sorted(r.value for r in roles),
            "jti": claims.jti,
            "iat": int(now.timestamp()),
            "exp": int(claims.expires_at.timestamp()),
        }
        return self._jwt.encode(payload, self._secret, algorithm=ALGORITHM), claims

    def decode(self, token: str) -> TokenClaims:
        """Verify `token` and return its claims; raises NotAuthenticated if it is not valid now."""
        claims = self._verified(token)
        now = self._clock.now()
        if not claims.issued_at - TOKEN_CLOCK_SKEW <= now < claims.expires_at:
            raise NotAuthenticated("invalid or expired token")
        return claims

    def _verify_signature(self, token: str) -> TokenClaims:
        """The claims of a well-formed token signed with our key, whatever the time."""
        try:
            payload = self._jwt.decode(token, self._secret, algorithms=[ALGORITHM])
            return TokenClaims(
                user_id=int(payload["sub"]),
                roles=frozenset(Role(r) for r in payload["roles"]),
                jti=_text(payload["jti"]),
                issued_at=datetime.fromtimestamp(_integer(payload["iat"]), UTC),
                expires_at=datetime.fromtimestamp(_integer(payload["exp"]), UTC),
            )
        except (jwt.PyJWTError, KeyError, TypeError, ValueError, OverflowError, OSError):
            raise NotAuthenticated("invalid or expired token") from None


def _integer(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError("a NumericDate claim must be an integer here")
    return value


def _text(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError("jti must be a non-empty string")
    return value
