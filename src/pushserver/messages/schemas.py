"""Wire models of the message endpoints."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, field_validator

from pushserver.api.envelope import ApiModel
from pushserver.applications.schemas import AppId
from pushserver.devices.schemas import ActivationId, UserId

# Text fields have no length of their own: what bounds them is the provider's payload limit,
# checked on the rendered notification (413).
LocArgs = Annotated[list[str], Field(max_length=50)]


class Mode(StrEnum):
    SYNCHRONOUS = "SYNCHRONOUS"
    ASYNCHRONOUS = "ASYNCHRONOUS"


class Priority(StrEnum):
    HIGH = "HIGH"
    NORMAL = "NORMAL"


class MessageBody(ApiModel):
    """The unified body: one shape, rendered for each provider."""

    title: str | None = None
    title_loc_key: str | None = None
    title_loc_args: LocArgs | None = None
    body: str | None = None
    body_loc_key: str | None = None
    body_loc_args: LocArgs | None = None
    badge: Annotated[int, Field(ge=0, le=2**31 - 1)] | None = None
    sound: str | None = None
    icon: str | None = None
    category: str | None = None
    collapse_key: str | None = Field(default=None, description="At most 64 bytes (APNs limit)")
    valid_until: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with a zone; never delivered after it"
    )
    extras: dict[str, Any] | None = Field(
        default=None, description="Custom keys: APNs top-level keys, FCM data, HMS data"
    )

    @field_validator("collapse_key")
    @classmethod
    def _collapse_key(cls, value: str | None) -> str | None:
        if value is not None and not 0 < len(value.encode()) <= 64:
            raise ValueError("must be 1 to 64 bytes")
        return value

    @field_validator("extras")
    @classmethod
    def _extras(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None and "aps" in value:
            raise ValueError('"aps" is reserved for APNs')
        return value


class MessageAttributes(ApiModel):
    silent: bool = False
    personal: bool = False
    encrypted: bool = False


class Message(ApiModel):
    user_id: UserId
    activation_id: ActivationId | None = None
    priority: Priority = Priority.HIGH
    attributes: MessageAttributes = Field(default_factory=MessageAttributes)
    body: MessageBody


class SendRequest(ApiModel):
    app_id: AppId
    mode: Mode = Mode.SYNCHRONOUS
    message: Message


class BatchSendRequest(ApiModel):
    app_id: AppId
    mode: Mode = Mode.SYNCHRONOUS
    batch: Annotated[list[Message], Field(min_length=1)]


class PlatformCounts(ApiModel):
    sent: int = 0
    failed: int = 0
    pending: int = 0
    total: int = 0


class SendResult(ApiModel):
    mode: Mode
    ios: PlatformCounts = Field(default_factory=PlatformCounts)
    android: PlatformCounts = Field(default_factory=PlatformCounts)
    huawei: PlatformCounts = Field(default_factory=PlatformCounts)
    message_ids: list[int] | None = Field(
        default=None, description="ASYNCHRONOUS only: the ids of the queued messages"
    )


class MessageStatus(StrEnum):
    FAILED = "FAILED"
    PENDING = "PENDING"
    SENT = "SENT"


class MessageDetail(ApiModel):
    id: int
    app_id: int | None = None
    device_id: int | None = None
    user_id: str | None = None
    activation_id: str | None = None
    platform: str | None = None
    status: MessageStatus
    attempts: int
    last_error: str | None = None
    silent: bool
    personal: bool
    encrypted: bool
    priority: str | None = None
    body: dict[str, Any] | None = None
    timestamp_created: datetime
    timestamp_last_attempt: datetime | None = None
    timestamp_sent: datetime | None = None
    next_attempt_at: datetime | None = None
    valid_until: datetime | None = None


STATUS_VALUES: dict[int, MessageStatus] = {
    -1: MessageStatus.FAILED,
    0: MessageStatus.PENDING,
    1: MessageStatus.SENT,
}
PENDING, SENT, FAILED = 0, 1, -1
