"""Typed settings, read from the environment (prefix ``PUSH_SERVER_``) or a ``.env`` file."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

import limits
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

    # Providers: every base URL is a setting, so a proxy, a test or a benchmark can redirect it.
    apns_production_url: str = "https://api.push.apple.com"
    apns_development_url: str = "https://api.sandbox.push.apple.com"
    fcm_url: str = Field(
        default="https://fcm.googleapis.com", description="Base URL before /v1/projects/..."
    )
    hms_url: str = "https://push-api.cloud.huawei.com"
    hms_token_url: str = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
    provider_ca_file: Path | None = Field(
        default=None, description="Extra certificate authorities (PEM) to trust for provider TLS"
    )
    provider_connect_timeout_s: float = Field(default=5.0, gt=0)
    provider_timeout_s: float = Field(default=10.0, gt=0, description="Whole request, per attempt")
    apns_connections: int = Field(default=2, ge=1, le=32)
    apns_streams_per_connection: int = Field(default=500, ge=1, le=1000)
    fcm_connections: int = Field(default=2, ge=1, le=32)
    fcm_streams_per_connection: int = Field(default=200, ge=1, le=1000)
    hms_connections: int = Field(default=1, ge=1, le=32)
    hms_streams_per_connection: int = Field(default=100, ge=1, le=1000)
    apns_token_ttl_s: float = Field(
        default=1800, ge=1200, le=3000, description="Age at which the APNs JWT is renewed"
    )

    # Delivery
    sync_send_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest a SYNCHRONOUS send waits for the providers"
    )
    max_batch_size: int = Field(default=1000, ge=1, le=100_000)
    retry_max_attempts: int = Field(default=8, ge=1, le=100)
    retry_base_s: float = Field(default=2.0, gt=0)
    retry_max_s: float = Field(default=900.0, gt=0)
    worker_enabled: bool | None = Field(
        default=None,
        description="Run the delivery worker inside `serve`; by default only on SQLite",
    )
    worker_batch_size: int = Field(default=500, ge=1, le=10_000)
    worker_lease_s: float = Field(default=60.0, ge=5)
    worker_idle_s: float = Field(default=0.5, gt=0, description="Longest sleep when idle")
    credentials_refresh_s: float = Field(
        default=2.0, gt=0, description="How often a process looks for changed credentials"
    )

    # PowerAuth Server, asked for an activation's status and user when a request does not say
    powerauth_url: str | None = Field(
        default=None, description="Base URL before /rest/v3/...; unset: no PowerAuth Server"
    )
    powerauth_username: str | None = Field(default=None, description="HTTP basic user, if any")
    powerauth_password: SecretStr | None = None
    powerauth_connect_timeout_s: float = Field(default=2.0, gt=0)
    powerauth_timeout_s: float = Field(default=5.0, gt=0, description="Whole request")

    # End-to-end encrypted messages show this instead of their own text.
    encrypted_message_title: str = Field(default="New message", min_length=1, max_length=200)
    encrypted_message_body: str = Field(
        default="Open the app to read it", min_length=1, max_length=1000
    )

    rate_limit: str | None = Field(
        default=None,
        description='Requests per API key and process, e.g. "100/second"; unset: no limit',
    )

    application_name: str = "push-server"
    application_display_name: str = "Push Server"
    application_environment: str = "production"

    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("powerauth_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            # An empty PUSH_SERVER_POWERAUTH_URL in an env file means "not configured".
            return None
        url = value.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator("rate_limit")
    @classmethod
    def _rate(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        try:
            limits.parse(value.strip())
        except ValueError:
            raise ValueError(
                'must be a count per period, e.g. "100/second" or "6000/minute"'
            ) from None
        return value.strip()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'pushserver.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")

    @property
    def runs_worker_in_serve(self) -> bool:
        return self.is_sqlite if self.worker_enabled is None else self.worker_enabled

    @property
    def listens_publicly(self) -> bool:
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"
