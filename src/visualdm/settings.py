"""Configuration from VDM_* environment variables; without any, the embedded default."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Process settings. Nothing here is a policy number: those live in ownership.py."""

    model_config = SettingsConfigDict(env_prefix="VDM_", extra="ignore")

    database_url: str = Field(
        default="sqlite+aiosqlite:///./visualdm.db",
        description="SQLAlchemy async URL; SQLite file in the working directory by default.",
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL; unset means in-process cache, events and limits."
    )
    redis_prefix: str = Field(default="vdm", description="Prefix of every Redis key.")
    jwt_secret: SecretStr | None = Field(
        default=None, description="HS256 signing secret; required in production mode."
    )
    data_dir: Path = Field(default=Path(), description="Where embedded state files are kept.")
    archive_url: str | None = Field(
        default=None, description="fsspec URL of cold storage; unset means data_dir/archive."
    )
    scheduler: bool = Field(
        default=True, description="Run the lifecycle jobs periodically in the API process."
    )
    db_roles: bool = Field(
        default=True,
        description="On PostgreSQL, run each unit of work under its module's NOLOGIN role.",
    )
    db_role_prefix: str = Field(default="vdm_", description="Prefix of the per-module roles.")
    db_pool_size: int = Field(default=10, ge=1)
    redis_pool_size: int = Field(
        default=256, ge=1, description="Redis connections per process for auth and limits."
    )
    world_min_x: float = -1_000_000.0
    world_min_y: float = -1_000_000.0
    world_max_x: float = 1_000_000.0
    world_max_y: float = 1_000_000.0
    log_level: str = "INFO"

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, url: str) -> str:
        """Accept plain postgresql:// and sqlite:// URLs by naming their async driver."""
        if url.startswith("postgresql://") or url.startswith("postgres://"):
            return "postgresql+asyncpg://" + url.split("://", 1)[1]
        if url.startswith("sqlite://"):
            return "sqlite+aiosqlite://" + url.split("://", 1)[1]
        return url

    @property
    def is_postgres(self) -> bool:
        """Whether the database is PostgreSQL (production) rather than SQLite (embedded)."""
        return self.database_url.startswith("postgresql")

    @property
    def is_production(self) -> bool:
        """Production is PostgreSQL plus Redis; anything else is the embedded mode."""
        return self.is_postgres and self.redis_url is not None
