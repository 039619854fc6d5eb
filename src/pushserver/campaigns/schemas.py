"""Wire models of the campaign endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from pushserver.api.envelope import ApiModel
from pushserver.applications.schemas import AppId
from pushserver.devices.schemas import UserId
from pushserver.messages.schemas import MessageBody

PENDING, SENT, FAILED, SENDING = 0, 1, -1, 2
MAX_USERS_PER_CALL = 1_000_000

UserIds = Annotated[list[UserId], Field(min_length=1, max_length=MAX_USERS_PER_CALL)]


class CreateCampaignRequest(ApiModel):
    app_id: AppId
    message: MessageBody


class CampaignCreated(ApiModel):
    id: int


class Progress(ApiModel):
    total: int = 0
    pending: int = 0
    sending: int = 0
    sent: int = 0
    failed: int = 0


class Campaign(ApiModel):
    id: int
    app_id: int
    sent: bool
    message: dict[str, Any]
    timestamp_created: datetime
    timestamp_sending: datetime | None = None
    timestamp_sent: datetime | None = None


class CampaignDetail(Campaign):
    progress: Progress


class CampaignUsers(ApiModel):
    campaign_id: int
    users: list[str]


class TestSendRequest(ApiModel):
    user_id: UserId


class Deleted(ApiModel):
    deleted: bool = True
