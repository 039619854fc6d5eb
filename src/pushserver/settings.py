"""Typed settings, read from the environment (prefix ``PUSH_SERVER_``) or a ``.env`` file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="PUSH_SERVER_", env_file=".env", extra="ignore", frozen=True
    )

    data_dir: Path = Field(
        default=Path("data"),
        description="Directory for the embedded SQLite database and the generated master key.",
    )
    database_url: str | None = Field(
        default=None,
        description="SQLAlchemy URL; defaults to a SQLite file in the data directory.",
    )
    database_pool_size: int = Field(default=10, ge=1, le=500)
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 of 32 random bytes; encrypts credentials at rest.",
    )

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    auth_disabled: bool = Field(
        default=False,
        description="Development only: accept every request without an API key.",
    )
    max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)
    api_key_cache_s: float = Field(default=5.0, ge=0)

    application_name: str = "push-server"
    application_display_name: str = "Push Server"
    application_environment: str = "production"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'pushserver.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def listens_publicly(self) -> bool:
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"
