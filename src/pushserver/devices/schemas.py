"""Wire models of the device endpoints."""

from __future__ import annotations

import base64
import binascii
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from pushserver.api.envelope import ApiModel
from pushserver.applications.schemas import AppId


class Platform(StrEnum):
    IOS = "ios"
    ANDROID = "android"
    HUAWEI = "huawei"


class ActivationStatus(StrEnum):
    CREATED = "CREATED"
    PENDING_COMMIT = "PENDING_COMMIT"
    ACTIVE = "ACTIVE"
    BLOCKED = "BLOCKED"
    REMOVED = "REMOVED"


_PLATFORM_ALIASES = {"apns": Platform.IOS, "fcm": Platform.ANDROID, "hms": Platform.HUAWEI}


def _platform(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    name = value.strip().lower()
    return _PLATFORM_ALIASES.get(name, name)


def _activation_status(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


def _key_material(value: Any) -> Any:
    """Base64 of exactly 16 bytes, as PowerAuth's KEY_TRANSPORT_PARTIAL and SESSION_INDEX are."""
    if not isinstance(value, str):
        return value
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("must be base64") from None
    if len(decoded) != 16:
        raise ValueError("must be base64 of 16 bytes")
    return value


PlatformField = Annotated[
    Platform,
    BeforeValidator(_platform),
    Field(description="ios, android or huawei; apns, fcm and hms are accepted as aliases"),
]
StatusField = Annotated[ActivationStatus, BeforeValidator(_activation_status)]
Token = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
ActivationId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=37)]
UserId = Annotated[str, StringConstraints(min_length=1, max_length=255)]
KeyMaterial = Annotated[str, BeforeValidator(_key_material)]


class _Registration(ApiModel):
    app_id: AppId
    token: Token
    platform: PlatformField
    environment: Literal["development", "production"] | None = Field(
        default=None, description="APNs environment of an iOS token; ignored for other platforms"
    )
    user_id: UserId | None = None
    activation_status: StatusField | None = None
    encryption_key: KeyMaterial | None = Field(
        default=None, description="Base64 of KEY_TRANSPORT_PARTIAL, for end-to-end encryption"
    )
    encryption_key_index: KeyMaterial | None = Field(
        default=None, description="Base64 of the SESSION_INDEX the key was derived with"
    )

    @model_validator(mode="after")
    def _keys_together(self) -> _Registration:
        if (self.encryption_key is None) != (self.encryption_key_index is None):
            raise ValueError("encryptionKey and encryptionKeyIndex must be given together")
        return self


class CreateDeviceRequest(_Registration):
    activation_id: ActivationId


class CreateDeviceMultiRequest(_Registration):
    activation_ids: Annotated[list[ActivationId], Field(min_length=1, max_length=100)]


class DeleteDeviceRequest(ApiModel):
    app_id: AppId
    token: Token


class StatusUpdateRequest(BaseModel):
    """The bare body of PowerAuth Server's status callback."""

    model_config = ConfigDict(extra="ignore")

    activationId: ActivationId
    activationStatus: StatusField | None = None
