"""The work queue in ``push_message``: claiming due messages and writing back what happened."""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.db.engine import id_among, take_sqlite_write_lock
from pushserver.db.models import PushDevice, PushMessage
from pushserver.delivery.outcomes import Outcome, Verdict
from pushserver.messages.schemas import FAILED, PENDING, SENT
from pushserver.settings import Settings

NO_ANSWER = "no answer from the provider within the synchronous send timeout"


@dataclass(frozen=True, slots=True)
class SealedDeviceKey:
    """A device's KEY_TRANSPORT_PARTIAL and SESSION_INDEX as stored, under the master key."""

    activation_id: str
    key: str
    index: str


@dataclass(frozen=True, slots=True)
class Job:
    """One message to one device, as claimed from the queue."""

    message_id: int
    app_id: int
    device_id: int | None
    platform: str
    token: str
    environment: str | None
    # An encrypted message's body is stored sealed under the master key, as the row holds it.
    body: str
    silent: bool
    priority: str | None
    encrypted: bool
    valid_until: datetime | None
    attempts: int
    # Only for encrypted messages: the device's key, still sealed, loaded when the job is taken.
    device_key: SealedDeviceKey | None = None
    # Only for a campaign's device: the campaign it belongs to.
    campaign_id: int | None = None


def job_from_row(message_id: int, row: Mapping[str, Any]) -> Job:
    """A job from ``push_message`` columns (a database row or the values of a new one)."""
    return Job(
        message_id=message_id,
        app_id=row["app_id"],
        device_id=row["device_registration_id"],
        platform=row["platform"],
        token=row["push_token"],
        environment=row["environment"],
        body=row["message_body"],
        silent=row["silent"],
        priority=row["priority"],
        encrypted=row["encrypted"],
        valid_until=row["valid_until"],
        attempts=row["attempts"],
    )


_JOB_COLUMNS = (
    PushMessage.id,
    PushMessage.app_id,
    PushMessage.device_registration_id,
    PushMessage.platform,
    PushMessage.push_token,
    PushMessage.environment,
    PushMessage.message_body,
    PushMessage.silent,
    PushMessage.priority,
    PushMessage.encrypted,
    PushMessage.valid_until,
    PushMessage.attempts,
)


async def claim(session: AsyncSession, batch_size: int, lease_s: float, now: datetime) -> list[Job]:
    """Take up to ``batch_size`` due messages and hold them for ``lease_s``.

    Rows other workers hold are skipped, not waited for. A holder that dies loses its lease
    when it runs out, and the messages are claimed again.
    """
    await take_sqlite_write_lock(session)
    query = (
        select(*_JOB_COLUMNS)
        .where(PushMessage.status == PENDING, PushMessage.next_attempt_at <= now)
        .order_by(PushMessage.next_attempt_at)
        .limit(batch_size)
        .with_for_update(skip_locked=True)
    )
    rows = (await session.execute(query)).all()
    if not rows:
        return []
    ids = [row.id for row in rows]
    await session.execute(
        update(PushMessage)
        .where(id_among(session, PushMessage.id, ids))
        .values(
            next_attempt_at=now + timedelta(seconds=lease_s),
            attempts=PushMessage.attempts + 1,
            timestamp_last_attempt=now,
        )
        .execution_options(synchronize_session=False)
    )
    claimed = [job_from_row(row.id, {**row._mapping, "attempts": row.attempts + 1}) for row in rows]
    return await with_device_keys(session, claimed)


async def with_device_keys(session: AsyncSession, claimed: list[Job]) -> list[Job]:
    """Attach each encrypted job's device key; other jobs are returned as they are.

    The key is read when the message is sent, not when it was queued, so a device that
    registered a new key since gets its message under that key. A device that moved to another
    activation since gets none: the new activation's key must not open the old one's messages.
    """
    encrypted = [job.message_id for job in claimed if job.encrypted]
    if not encrypted:
        return claimed
    query = (
        select(
            PushMessage.id,
            PushDevice.activation_id,
            PushDevice.encryption_key,
            PushDevice.encryption_key_index,
        )
        .join(
            PushDevice,
            (PushDevice.id == PushMessage.device_registration_id)
            & (PushDevice.activation_id == PushMessage.activation_id),
        )
        .where(
            PushMessage.id.in_(encrypted),
            PushDevice.encryption_key.is_not(None),
            PushDevice.encryption_key_index.is_not(None),
        )
    )
    keys = {
        row.id: SealedDeviceKey(row.activation_id, row.encryption_key, row.encryption_key_index)
        for row in (await session.execute(query)).all()
    }
    return [
        replace(job, device_key=keys[job.message_id]) if job.message_id in keys else job
        for job in claimed
    ]


async def release(session: AsyncSession, message_ids: Sequence[int], now: datetime) -> None:
    """Hand unfinished messages back at once, instead of when their lease runs out."""
    if message_ids:
        await session.execute(
            update(PushMessage)
            .where(PushMessage.id.in_(message_ids), PushMessage.status == PENDING)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )


def backoff_s(settings: Settings, attempts: int, retry_after_s: float | None) -> float:
    """Exponential backoff with jitter, never sooner than the provider asked."""
    ceiling = min(settings.retry_max_s, settings.retry_base_s * 2 ** max(attempts - 1, 0))
    delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security
    return max(delay, retry_after_s or 0.0)


async def record(
    session: AsyncSession,
    results: Sequence[tuple[Job, Outcome | None]],
    settings: Settings,
    now: datetime,
) -> dict[int, int]:
    """Write every outcome back: one statement for the sent, one per row for the rest.

    ``None`` means no answer came in time: the message stays PENDING for a retry. Answers the
    status each message ended in.
    """
    statuses: dict[int, int] = {}
    sent_ids: list[int] = []
    changes: list[dict[str, object]] = []
    dead: list[tuple[Job, Outcome]] = []

    for job, outcome in results:
        if outcome is not None and outcome.verdict is Verdict.SENT:
            sent_ids.append(job.message_id)
            statuses[job.message_id] = SENT
            continue
        change = next_state(job, outcome, settings, now)
        statuses[job.message_id] = int(change["status"])  # type: ignore[call-overload]
        changes.append(change)
        if outcome is not None and outcome.verdict is Verdict.DEAD_TOKEN:
            dead.append((job, outcome))

    if sent_ids:
        await session.execute(
            update(PushMessage)
            .where(id_among(session, PushMessage.id, sent_ids))
            .values(status=SENT, timestamp_sent=now, next_attempt_at=None, last_error=None)
            .execution_options(synchronize_session=False)
        )
    if changes:
        await session.execute(update(PushMessage), changes)
    for job, outcome in dead:
        await _delete_dead_device(session, job, outcome)
    return statuses


def next_state(
    job: Job, outcome: Outcome | None, settings: Settings, now: datetime
) -> dict[str, object]:
    """The columns a message (or campaign device) gets for an outcome other than SENT."""
    error: str | None = NO_ANSWER
    wait_s: float | None = None
    retry = True
    if outcome is not None:
        retry = outcome.verdict in (Verdict.RETRY, Verdict.REAUTHORIZE)
        error, wait_s = outcome.error, outcome.retry_after_s

    if not retry:
        return {
            "id": job.message_id,
            "status": FAILED,
            "last_error": _clip(error),
            "next_attempt_at": None,
        }
    if job.attempts >= settings.retry_max_attempts:
        error = f"gave up after {job.attempts} attempts; last: {error}"
        return {
            "id": job.message_id,
            "status": FAILED,
            "last_error": _clip(error),
            "next_attempt_at": None,
        }

    due = now + timedelta(seconds=backoff_s(settings, job.attempts, wait_s))
    if job.valid_until is not None and due >= job.valid_until:
        error = f"validUntil passes before the next attempt; last: {error}"
        return {
            "id": job.message_id,
            "status": FAILED,
            "last_error": _clip(error),
            "next_attempt_at": None,
        }
    return {
        "id": job.message_id,
        "status": PENDING,
        "last_error": _clip(error),
        "next_attempt_at": due,
    }


def _clip(error: str | None) -> str | None:
    return error[:1000] if error else error


async def _delete_dead_device(session: AsyncSession, job: Job, outcome: Outcome) -> None:
    """Remove the device the provider disowned, unless it registered again since."""
    if job.device_id is None:
        return
    query = delete(PushDevice).where(
        PushDevice.id == job.device_id, PushDevice.push_token == job.token
    )
    if outcome.token_invalid_since is not None:
        query = query.where(PushDevice.timestamp_created < outcome.token_invalid_since)
    await session.execute(query.execution_options(synchronize_session=False))
