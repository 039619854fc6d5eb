"""Campaign rules: users are added until the live send; the live send happens once."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.applications import service as applications
from pushserver.campaigns import repository
from pushserver.campaigns.schemas import (
    FAILED,
    PENDING,
    SENDING,
    SENT,
    Campaign,
    CampaignDetail,
    CreateCampaignRequest,
    Progress,
)
from pushserver.db.models import PushCampaign
from pushserver.db.types import utcnow
from pushserver.errors import Conflict, NotFound
from pushserver.messages import service as messages
from pushserver.messages.schemas import Message, MessageAttributes, MessageBody
from pushserver.settings import Settings

log = logging.getLogger(__name__)


def _view(row: PushCampaign) -> Campaign:
    return Campaign(
        id=row.id,
        app_id=row.appid,
        sent=row.sent,
        message=json.loads(row.message),
        timestamp_created=row.timestamp_created,
        timestamp_sending=row.timestamp_sending,
        timestamp_sent=row.timestamp_sent,
    )


async def require(
    session: AsyncSession, campaign_id: int, *, for_update: bool = False
) -> PushCampaign:
    row = await repository.get(session, campaign_id, for_update=for_update)
    if row is None:
        raise NotFound(f"campaign {campaign_id} does not exist")
    return row


def _require_editable(row: PushCampaign) -> None:
    if row.timestamp_sending is not None:
        state = "sent" if row.sent else "being sent"
        raise Conflict(f"campaign {row.id} is already {state}; its users can no longer change")


async def create(session: AsyncSession, request: CreateCampaignRequest, settings: Settings) -> int:
    body = messages.body_json(request.message)
    messages.check_payload_size(
        body, silent=False, encrypted=False, settings=settings, field="requestObject.message"
    )
    await applications.require(session, request.app_id)
    row = PushCampaign(
        appid=request.app_id,
        message=body,
        sent=False,
        timestamp_created=utcnow(),
    )
    session.add(row)
    await session.flush()
    log.info("campaign created campaign_id=%s app_id=%s", row.id, row.appid)
    return row.id


async def detail(session: AsyncSession, campaign_id: int) -> CampaignDetail:
    row = await require(session, campaign_id)
    counts = await repository.progress(session, campaign_id)
    progress = Progress(
        pending=counts.get(PENDING, 0),
        sending=counts.get(SENDING, 0),
        sent=counts.get(SENT, 0),
        failed=counts.get(FAILED, 0),
    )
    progress.total = progress.pending + progress.sending + progress.sent + progress.failed
    return CampaignDetail(**_view(row).model_dump(), progress=progress)


async def list_campaigns(session: AsyncSession, *, include_sent: bool) -> list[Campaign]:
    return [
        _view(row) for row in await repository.list_campaigns(session, include_sent=include_sent)
    ]


async def add_users(session: AsyncSession, campaign_id: int, user_ids: Sequence[str]) -> None:
    row = await require(session, campaign_id, for_update=True)
    _require_editable(row)
    await repository.add_users(session, campaign_id, list(dict.fromkeys(user_ids)), utcnow())
    log.info("campaign users added campaign_id=%s users=%d", campaign_id, len(user_ids))


async def delete_users(session: AsyncSession, campaign_id: int, user_ids: Sequence[str]) -> None:
    row = await require(session, campaign_id, for_update=True)
    _require_editable(row)
    await repository.delete_users(session, campaign_id, list(user_ids))


async def list_users(session: AsyncSession, campaign_id: int, page: int, size: int) -> list[str]:
    await require(session, campaign_id)
    return await repository.list_users(session, campaign_id, page, size)


async def start_live(session: AsyncSession, campaign_id: int) -> int:
    """Resolve the campaign to its devices, once; workers send from there."""
    row = await require(session, campaign_id, for_update=True)
    if row.timestamp_sending is not None:
        raise Conflict(f"campaign {campaign_id} was already sent live")
    now = utcnow()
    row.timestamp_sending = now
    devices = await repository.resolve_devices(session, row, now)
    if devices == 0:
        # Nothing to send: the campaign is complete at once.
        row.sent = True
        row.timestamp_sent = now
    log.info("campaign live send started campaign_id=%s devices=%d", campaign_id, devices)
    return devices


async def delete(session: AsyncSession, campaign_id: int) -> None:
    await require(session, campaign_id, for_update=True)
    await repository.delete_campaign(session, campaign_id)
    log.info("campaign deleted campaign_id=%s", campaign_id)


async def test_message(
    session: AsyncSession, campaign_id: int, user_id: str
) -> tuple[int, Message]:
    """The campaign's message addressed to one user, for a synchronous test send."""
    row = await require(session, campaign_id)
    body = MessageBody.model_validate(json.loads(row.message))
    return row.appid, Message(user_id=user_id, body=body, attributes=MessageAttributes())
