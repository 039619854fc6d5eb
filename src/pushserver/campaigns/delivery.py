"""Campaign sending: workers claim batches of ``push_campaign_device`` rows and write outcomes back.

The same senders as single messages; a campaign's message is rendered once per batch and only
the token changes from request to request.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.campaigns import repository
from pushserver.campaigns.schemas import PENDING, SENDING, SENT
from pushserver.db.engine import id_among, take_sqlite_write_lock
from pushserver.db.models import PushCampaign, PushCampaignDevice, PushDevice
from pushserver.delivery import jobs
from pushserver.delivery.jobs import Job
from pushserver.delivery.outcomes import Outcome, Verdict
from pushserver.settings import Settings

# Campaign rows and messages are numbered apart, so their apns-ids never coincide.
ID_OFFSET = 1 << 64


def due_rows(batch_size: int, now: datetime) -> Select[int, int, str, str, str | None, int]:
    """The first ``batch_size`` due rows, locked, skipping those another worker holds."""
    return (
        select(
            PushCampaignDevice.id,
            PushCampaignDevice.campaign_id,
            PushCampaignDevice.platform,
            PushCampaignDevice.token,
            PushCampaignDevice.environment,
            PushCampaignDevice.attempts,
        )
        .where(
            PushCampaignDevice.next_attempt_at <= now,
            PushCampaignDevice.status.in_((PENDING, SENDING)),
        )
        .order_by(PushCampaignDevice.next_attempt_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )


async def claim(session: AsyncSession, batch_size: int, lease_s: float, now: datetime) -> list[Job]:
    """Take up to ``batch_size`` due campaign devices; rows held by a dead worker come back.

    Due means ``next_attempt_at <= now``: PENDING rows from their due time, SENDING rows when
    their lease has run out. Final rows have no ``next_attempt_at``.
    """
    await take_sqlite_write_lock(session)
    query = due_rows(batch_size, now)
    rows = (await session.execute(query)).all()
    if not rows:
        return []

    await session.execute(
        update(PushCampaignDevice)
        .where(id_among(session, PushCampaignDevice.id, [row.id for row in rows]))
        .values(
            status=SENDING,
            next_attempt_at=now + timedelta(seconds=lease_s),
            attempts=PushCampaignDevice.attempts + 1,
            timestamp_last_attempt=now,
        )
        .execution_options(synchronize_session=False)
    )
    campaigns = {
        campaign.id: _Message(campaign)
        for campaign in await session.scalars(
            select(PushCampaign).where(PushCampaign.id.in_({row.campaign_id for row in rows}))
        )
    }
    claimed = []
    for row in rows:
        message = campaigns.get(row.campaign_id)
        if message is None:
            continue  # deleted while it was being sent
        claimed.append(
            Job(
                message_id=ID_OFFSET + row.id,
                app_id=message.app_id,
                device_id=None,
                platform=row.platform,
                token=row.token,
                environment=row.environment,
                body=message.body,
                silent=False,
                priority="HIGH",
                encrypted=False,
                valid_until=message.valid_until,
                attempts=row.attempts + 1,
                campaign_id=row.campaign_id,
            )
        )
    return claimed


class _Message:
    """A campaign's message as its jobs carry it, read once per claim."""

    __slots__ = ("app_id", "body", "valid_until")

    def __init__(self, campaign: PushCampaign) -> None:
        self.app_id = campaign.appid
        self.body = campaign.message
        valid_until = json.loads(campaign.message).get("validUntil")
        self.valid_until = datetime.fromisoformat(valid_until) if valid_until else None


async def record(
    session: AsyncSession,
    results: Sequence[tuple[Job, Outcome | None]],
    settings: Settings,
    now: datetime,
) -> None:
    """Outcomes per row, dead tokens removed from the app, finished campaigns marked sent."""
    sent_ids: list[int] = []
    changes: list[dict[str, object]] = []
    for job, outcome in results:
        row_id = job.message_id - ID_OFFSET
        if outcome is not None and outcome.verdict is Verdict.SENT:
            sent_ids.append(row_id)
            continue
        change = jobs.next_state(job, outcome, settings, now)
        changes.append(change | {"id": row_id})
        if outcome is not None and outcome.verdict is Verdict.DEAD_TOKEN:
            await _delete_dead_token(session, job, outcome)

    if sent_ids:
        await session.execute(
            update(PushCampaignDevice)
            .where(id_among(session, PushCampaignDevice.id, sent_ids))
            .values(status=SENT, next_attempt_at=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
    if changes:
        await session.execute(update(PushCampaignDevice), changes)

    touched = {job.campaign_id for job, _ in results if job.campaign_id is not None}
    await repository.mark_sent_if_done(session, sorted(touched), now)


async def _delete_dead_token(session: AsyncSession, job: Job, outcome: Outcome) -> None:
    query = delete(PushDevice).where(
        PushDevice.app_id == job.app_id,
        PushDevice.platform == job.platform,
        PushDevice.push_token == job.token,
    )
    if outcome.token_invalid_since is not None:
        query = query.where(PushDevice.timestamp_created < outcome.token_invalid_since)
    await session.execute(query.execution_options(synchronize_session=False))


async def release(session: AsyncSession, message_ids: Sequence[int], now: datetime) -> None:
    """Hand unfinished campaign devices back at once, instead of when their lease runs out."""
    if message_ids:
        await session.execute(
            update(PushCampaignDevice)
            .where(
                id_among(session, PushCampaignDevice.id, [i - ID_OFFSET for i in message_ids]),
                PushCampaignDevice.status == SENDING,
            )
            .values(status=PENDING, next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )
