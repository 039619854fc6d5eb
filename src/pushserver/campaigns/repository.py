"""Queries on the campaign tables, set-based: nothing loads all of a campaign's users or devices."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, func, insert, literal, select, text, true, update
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from pushserver.campaigns.schemas import PENDING, SENDING
from pushserver.db.models import PushCampaign, PushCampaignDevice, PushCampaignUser, PushDevice

_CHUNK = 5000
_ANALYZE_AFTER = 10_000


async def get(
    session: AsyncSession, campaign_id: int, *, for_update: bool = False
) -> PushCampaign | None:
    query = select(PushCampaign).where(PushCampaign.id == campaign_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def list_campaigns(session: AsyncSession, *, include_sent: bool) -> list[PushCampaign]:
    query = select(PushCampaign).order_by(PushCampaign.id)
    if not include_sent:
        query = query.where(PushCampaign.sent.is_(False))
    return list((await session.scalars(query)).all())


async def add_users(
    session: AsyncSession, campaign_id: int, user_ids: Sequence[str], now: datetime
) -> None:
    """Insert the users, ignoring those the campaign already has."""
    dialect = session.get_bind().dialect.name
    for start in range(0, len(user_ids), _CHUNK):
        rows = [
            {"campaign_id": campaign_id, "user_id": user_id, "timestamp_created": now}
            for user_id in user_ids[start : start + _CHUNK]
        ]
        statement: Executable
        if dialect == "postgresql":
            statement = postgresql.insert(PushCampaignUser).on_conflict_do_nothing()
        elif dialect == "sqlite":
            statement = sqlite.insert(PushCampaignUser).on_conflict_do_nothing()
        else:
            statement = mysql.insert(PushCampaignUser).prefix_with("IGNORE")
        await session.execute(statement, rows)


async def delete_users(session: AsyncSession, campaign_id: int, user_ids: Sequence[str]) -> None:
    for start in range(0, len(user_ids), _CHUNK):
        await session.execute(
            delete(PushCampaignUser).where(
                PushCampaignUser.campaign_id == campaign_id,
                PushCampaignUser.user_id.in_(user_ids[start : start + _CHUNK]),
            )
        )


async def list_users(session: AsyncSession, campaign_id: int, page: int, size: int) -> list[str]:
    query = (
        select(PushCampaignUser.user_id)
        .where(PushCampaignUser.campaign_id == campaign_id)
        .order_by(PushCampaignUser.id)
        .offset(page * size)
        .limit(size)
    )
    return list((await session.scalars(query)).all())


async def resolve_devices(session: AsyncSession, campaign: PushCampaign, now: datetime) -> int:
    """One statement: the campaign's users to the distinct tokens of their devices in its app."""
    distinct_tokens = (
        select(
            literal(campaign.id).label("campaign_id"),
            PushDevice.platform,
            PushDevice.push_token,
            func.max(PushDevice.environment).label("environment"),
            literal(PENDING).label("status"),
            literal(0).label("attempts"),
            literal(now, PushCampaignDevice.next_attempt_at.type).label("next_attempt_at"),
            literal(now, PushCampaignDevice.timestamp_created.type).label("timestamp_created"),
        )
        .join(PushCampaignUser, PushCampaignUser.user_id == PushDevice.user_id)
        .where(PushCampaignUser.campaign_id == campaign.id, PushDevice.app_id == campaign.appid)
        .group_by(PushDevice.platform, PushDevice.push_token)
    )
    statement = insert(PushCampaignDevice).from_select(
        [
            "campaign_id",
            "platform",
            "token",
            "environment",
            "status",
            "attempts",
            "next_attempt_at",
            "timestamp_created",
        ],
        distinct_tokens,
    )
    result = await session.execute(statement)
    devices = int(result.rowcount)  # type: ignore[attr-defined]
    if devices >= _ANALYZE_AFTER and session.get_bind().dialect.name == "postgresql":
        # The planner must know of the new rows before the workers' first claims: with the
        # statistics of a near-empty table it reads every row of the campaign per claim.
        await session.execute(text("ANALYZE push_campaign_device"))
    return devices


async def progress(session: AsyncSession, campaign_id: int) -> dict[int, int]:
    query = (
        select(PushCampaignDevice.status, func.count())
        .where(PushCampaignDevice.campaign_id == campaign_id)
        .group_by(PushCampaignDevice.status)
    )
    return {status: int(count) for status, count in (await session.execute(query)).all()}


async def delete_campaign(session: AsyncSession, campaign_id: int) -> None:
    for model in (PushCampaignDevice, PushCampaignUser):
        await session.execute(delete(model).where(model.campaign_id == campaign_id))
    await session.execute(delete(PushCampaign).where(PushCampaign.id == campaign_id))


async def mark_sent_if_done(
    session: AsyncSession, campaign_ids: Sequence[int] | None, now: datetime
) -> None:
    """Campaigns (these, or all being sent) whose every device row is final become sent.

    Two workers finishing a campaign's last batches at once may each still see the other's rows
    unfinished; the idle workers' sweep over all campaigns (``campaign_ids`` None) catches that.
    """
    unfinished = (
        select(PushCampaignDevice.id)
        .where(
            PushCampaignDevice.campaign_id == PushCampaign.id,
            PushCampaignDevice.status.in_((PENDING, SENDING)),
        )
        .exists()
    )
    await session.execute(
        update(PushCampaign)
        .where(
            PushCampaign.id.in_(campaign_ids) if campaign_ids is not None else true(),
            PushCampaign.sent.is_(False),
            PushCampaign.timestamp_sending.is_not(None),
            ~unfinished,
        )
        .values(sent=True, timestamp_sent=now)
        .execution_options(synchronize_session=False)
    )
