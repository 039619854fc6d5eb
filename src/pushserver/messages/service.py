"""Sending: resolve each message to devices, log one row per device, deliver or queue."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.applications import service as applications
from pushserver.db.engine import Database
from pushserver.db.types import utcnow
from pushserver.delivery import jobs
from pushserver.delivery.dispatch import deliver, warn_credential_problems
from pushserver.delivery.encrypted import widest_form
from pushserver.delivery.jobs import Job
from pushserver.delivery.payloads import APNS_MAX_PAYLOAD_BYTES, Notification, apns_payload
from pushserver.delivery.registry import SenderRegistry
from pushserver.errors import NotFound, PayloadTooLarge, RequestInvalid, Violation
from pushserver.messages import repository
from pushserver.messages.schemas import (
    FAILED,
    PENDING,
    SENT,
    STATUS_VALUES,
    Message,
    MessageBody,
    MessageDetail,
    Mode,
    PlatformCounts,
    SendResult,
)
from pushserver.settings import Settings

log = logging.getLogger(__name__)

# A synchronous send holds its messages a little past its own deadline, so no worker takes them
# while it still waits for the providers.
SYNC_HOLD_MARGIN_S = 30.0


@dataclass(frozen=True, slots=True)
class Sending:
    settings: Settings
    database: Database
    registry: SenderRegistry


def body_json(body: MessageBody) -> str:
    """The unified body as stored in ``message_body`` and ``push_campaign.message``."""
    document = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def check_payload_size(
    body: str, *, silent: bool, encrypted: bool, settings: Settings, field: str
) -> None:
    """Refuse (413) a message whose APNs payload would be over 4096 bytes, the tightest limit
    of the providers; checked whatever devices its user has, so the answer does not depend on
    who is registered."""
    notification = Notification.from_body(json.loads(body), silent=silent, high_priority=True)
    if encrypted:
        notification = widest_form(
            notification, body, settings.encrypted_message_title, settings.encrypted_message_body
        )
    size = len(apns_payload(notification))
    if size > APNS_MAX_PAYLOAD_BYTES:
        raise PayloadTooLarge(
            f"the APNs payload of {field} would be {size} bytes, over {APNS_MAX_PAYLOAD_BYTES}",
            violations=[Violation(field, f"at most {APNS_MAX_PAYLOAD_BYTES} bytes as sent")],
        )


async def _log_rows(
    session: AsyncSession,
    sending: Sending,
    app_id: int,
    messages: Sequence[Message],
    bodies: Sequence[str],
    mode: Mode,
) -> tuple[list[int], list[dict[str, Any]]]:
    """Insert one PENDING row per message and device; the ids and the rows."""
    settings = sending.settings
    now = utcnow()
    if mode is Mode.SYNCHRONOUS:
        hold = now + timedelta(seconds=settings.sync_send_timeout_s + SYNC_HOLD_MARGIN_S)
        attempts, last_attempt = 1, now
    else:
        hold, attempts, last_attempt = now, 0, None

    devices = await repository.devices_of_users(session, app_id, (m.user_id for m in messages))
    by_user: dict[str, list[Any]] = defaultdict(list)
    for device in devices:
        by_user[device.user_id].append(device)

    rows: list[dict[str, Any]] = []
    for message, body in zip(messages, bodies, strict=True):
        attributes = message.attributes
        targets = [
            device
            for device in by_user.get(message.user_id, [])
            if (message.activation_id is None or device.activation_id == message.activation_id)
            and (device.is_active or not attributes.personal)
        ]
        for device in targets:
            rows.append(
                {
                    "app_id": app_id,
                    "device_registration_id": device.id,
                    "user_id": device.user_id,
                    "activation_id": device.activation_id,
                    "platform": device.platform,
                    "push_token": device.push_token,
                    "environment": device.environment,
                    "silent": attributes.silent,
                    "personal": attributes.personal,
                    "encrypted": attributes.encrypted,
                    "priority": message.priority.value,
                    "message_body": (
                        sending.registry.encryption.store(body, device.activation_id)
                        if attributes.encrypted
                        else body
                    ),
                    "valid_until": message.body.valid_until,
                    "status": PENDING,
                    "attempts": attempts,
                    "next_attempt_at": hold,
                    "timestamp_last_attempt": last_attempt,
                    "timestamp_created": now,
                }
            )
    ids = await repository.insert_messages(session, rows)
    return ids, rows


async def send(
    sending: Sending,
    app_id: int,
    messages: Sequence[Message],
    mode: Mode,
    *,
    batch: bool = False,
) -> SendResult:
    """Log and send (or queue) the messages; ``batch`` names their fields ``batch[i]``."""
    settings = sending.settings
    if len(messages) > settings.max_batch_size:
        raise RequestInvalid(
            f"the batch holds {len(messages)} messages; "
            f"at most {settings.max_batch_size} are allowed",
            violations=[
                Violation("requestObject.batch", f"at most {settings.max_batch_size} messages")
            ],
        )
    bodies = [body_json(message.body) for message in messages]
    for index, (message, body) in enumerate(zip(messages, bodies, strict=True)):
        check_payload_size(
            body,
            silent=message.attributes.silent,
            encrypted=message.attributes.encrypted,
            settings=settings,
            field=f"requestObject.batch[{index}].body" if batch else "requestObject.message.body",
        )
    async with sending.database.transaction() as session:
        await applications.require(session, app_id)
        ids, rows = await _log_rows(session, sending, app_id, messages, bodies, mode)
        queued: list[Job] = []
        if mode is Mode.SYNCHRONOUS:
            queued = [
                jobs.job_from_row(message_id, row)
                for message_id, row in zip(ids, rows, strict=True)
            ]
            # Read in the same transaction, so the key belongs to the device the row names.
            queued = await jobs.with_device_keys(session, queued)

    result = SendResult(mode=mode)
    if mode is Mode.ASYNCHRONOUS:
        for row in rows:
            _count(result, row["platform"], PENDING)
        result.message_ids = ids
        return result

    outcomes = await deliver(queued, sending.registry, utcnow(), settings.sync_send_timeout_s)
    warn_credential_problems(outcomes)
    async with sending.database.transaction() as session:
        statuses = await jobs.record(session, outcomes, settings, utcnow())
    for job in queued:
        _count(result, job.platform, statuses[job.message_id])
    log.info(
        "messages sent app_id=%s messages=%d devices=%d mode=%s",
        app_id,
        len(messages),
        len(queued),
        mode.value,
    )
    return result


def _count(result: SendResult, platform: str, status: int) -> None:
    counts: PlatformCounts = getattr(result, platform)
    counts.total += 1
    if status == SENT:
        counts.sent += 1
    elif status == FAILED:
        counts.failed += 1
    else:
        counts.pending += 1


async def detail(database: Database, message_id: int) -> MessageDetail:
    async with database.transaction() as session:
        row = await repository.get(session, message_id)
    if row is None:
        raise NotFound(f"message {message_id} does not exist")
    return MessageDetail(
        id=row.id,
        app_id=row.app_id,
        device_id=row.device_registration_id,
        user_id=row.user_id,
        activation_id=row.activation_id,
        platform=row.platform,
        status=STATUS_VALUES[row.status],
        attempts=row.attempts,
        last_error=row.last_error,
        silent=row.silent,
        personal=row.personal,
        encrypted=row.encrypted,
        priority=row.priority,
        # An encrypted message's text is for its device alone.
        body=json.loads(row.message_body) if row.message_body and not row.encrypted else None,
        timestamp_created=row.timestamp_created,
        timestamp_last_attempt=row.timestamp_last_attempt,
        timestamp_sent=row.timestamp_sent,
        next_attempt_at=row.next_attempt_at if row.status == PENDING else None,
        valid_until=row.valid_until,
    )
