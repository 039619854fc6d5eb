"""Table models: the six tables of the PowerAuth Push Server 2.0 schema, plus ``push_api_key``.

Column names of the original tables are kept exactly; added columns are marked as such and
each is introduced by the migration that documents it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Index, Integer, MetaData, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pushserver.db.types import Identity64, LongBinary, LongText, UtcDateTime, utcnow

NAMING = {
    "ix": "%(table_name)s_%(column_0_N_name)s_idx",
    "uq": "%(table_name)s_%(column_0_N_name)s_uq",
    "pk": "%(table_name)s_pk",
}


# SQLite hands a deleted row's id out again unless the key is declared AUTOINCREMENT; ids here
# name devices, messages, campaigns and keys in the API, so none may come back.
NO_ID_REUSE = {"sqlite_autoincrement": True}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class PushDevice(Base):
    __tablename__ = "push_device"
    __table_args__ = (
        UniqueConstraint("app_id", "activation_id"),
        Index(None, "app_id", "push_token"),
        Index(None, "app_id", "user_id"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(Identity64, primary_key=True, autoincrement=True)
    activation_id: Mapped[str] = mapped_column(String(37), index=True)
    user_id: Mapped[str | None] = mapped_column(String(255))
    app_id: Mapped[int] = mapped_column(BigInteger)
    platform: Mapped[str] = mapped_column(String(30))
    push_token: Mapped[str] = mapped_column(String(255))
    timestamp_created: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    is_active: Mapped[bool] = mapped_column(Boolean, default=False)
    encryption_key: Mapped[str | None] = mapped_column(Text)
    encryption_key_index: Mapped[str | None] = mapped_column(Text)
    # added: APNs environment of an iOS token ("development" or "production")
    environment: Mapped[str | None] = mapped_column(String(20))


class PushCredential(Base):
    __tablename__ = "push_credential"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(Identity64, primary_key=True, autoincrement=True)
    app_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    ios_key_id: Mapped[str | None] = mapped_column(String(255))
    ios_private_key: Mapped[bytes | None] = mapped_column(LongBinary)
    ios_team_id: Mapped[str | None] = mapped_column(String(255))
    ios_bundle: Mapped[str | None] = mapped_column(String(255))
    android_server_key: Mapped[str | None] = mapped_column(Text)
    android_bundle: Mapped[str | None] = mapped_column(String(255))
    # added columns
    ios_environment: Mapped[str | None] = mapped_column(String(20))
    android_private_key: Mapped[bytes | None] = mapped_column(LongBinary)
    android_project_id: Mapped[str | None] = mapped_column(String(255))
    huawei_project_id: Mapped[str | None] = mapped_column(String(255))
    huawei_client_id: Mapped[str | None] = mapped_column(String(255))
    huawei_client_secret: Mapped[bytes | None] = mapped_column(LongBinary)
    timestamp_created: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    timestamp_last_updated: Mapped[datetime] = mapped_column(
        UtcDateTime, default=utcnow, onupdate=utcnow
    )


class PushMessage(Base):
    __tablename__ = "push_message"
    __table_args__ = (Index(None, "status", "next_attempt_at"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(Identity64, primary_key=True, autoincrement=True)
    device_registration_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    user_id: Mapped[str | None] = mapped_column(String(255), index=True)
    activation_id: Mapped[str | None] = mapped_column(String(37), index=True)
    silent: Mapped[bool] = mapped_column(Boolean, default=False)
    personal: Mapped[bool] = mapped_column(Boolean, default=False)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    message_body: Mapped[str] = mapped_column(LongText)
    timestamp_created: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    status: Mapped[int] = mapped_column(Integer, default=0)
    # added by 0002: delivery state
    app_id: Mapped[int | None] = mapped_column(BigInteger)
    platform: Mapped[str | None] = mapped_column(String(30))
    push_token: Mapped[str | None] = mapped_column(String(255))
    environment: Mapped[str | None] = mapped_column(String(20))
    priority: Mapped[str | None] = mapped_column(String(10))
    valid_until: Mapped[datetime | None] = mapped_column(UtcDateTime)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    timestamp_last_attempt: Mapped[datetime | None] = mapped_column(UtcDateTime)
    timestamp_sent: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PushCampaign(Base):
    __tablename__ = "push_campaign"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(Identity64, primary_key=True, autoincrement=True)
    appid: Mapped[int] = mapped_column(BigInteger, index=True)
    message: Mapped[str] = mapped_column(LongText)
    sent: Mapped[bool] = mapped_column(Boolean, default=False)
    timestamp_created: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    timestamp_sent: Mapped[datetime | None] = mapped_column(UtcDateTime)
    # added by 0003: when the live send began (NULL until then)
    timestamp_sending: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PushCampaignUser(Base):
    __tablename__ = "push_campaign_user"
    __table_args__ = (UniqueConstraint("campaign_id", "user_id"), NO_ID_REUSE)

    id: Mapped[int] = mapped_column(Identity64, primary_key=True, autoincrement=True)
    campaign_id: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[str] = mapped_column(String(255), index=True)
    timestamp_created: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class PushCampaignDevice(Base):
    __tablename__ = "push_campaign_device"
    __table_args__ = (
        UniqueConstraint("campaign_id", "platform", "token"),
        Index(None, "next_attempt_at"),
        Index(None, "campaign_id", "status"),
        NO_ID_REUSE,
    )

    id: Mapped[int] = mapped_column(Identity64, primary_key=True, autoincrement=True)
    # Led by the unique (campaign_id, platform, token) and (campaign_id, status) indexes.
    campaign_id: Mapped[int] = mapped_column(BigInteger)
    platform: Mapped[str] = mapped_column(String(20))
    token: Mapped[str] = mapped_column(String(255))
    status: Mapped[int] = mapped_column(Integer, default=0)
    timestamp_created: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    # added by 0003: delivery state, as on push_message
    environment: Mapped[str | None] = mapped_column(String(20))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(String(1000))
    timestamp_last_attempt: Mapped[datetime | None] = mapped_column(UtcDateTime)


class PushApiKey(Base):
    """Added table: API keys, stored only as SHA-256 hashes."""

    __tablename__ = "push_api_key"
    __table_args__ = NO_ID_REUSE

    id: Mapped[int] = mapped_column(Identity64, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    key_prefix: Mapped[str] = mapped_column(String(16))
    timestamp_created: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
