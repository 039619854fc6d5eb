"""Sends claimed jobs through the right senders, concurrently, each notification rendered once.

An end-to-end encrypted message is the exception: each device's copy is sealed under that
device's own key, so it is rendered per device.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import datetime

from pushserver.delivery import metrics
from pushserver.delivery.encrypted import CannotSeal
from pushserver.delivery.jobs import Job
from pushserver.delivery.outcomes import Outcome, Verdict
from pushserver.delivery.payloads import Notification
from pushserver.delivery.registry import AppSenders, SenderRegistry
from pushserver.delivery.senders import Device, PayloadTooLarge, Sender

log = logging.getLogger(__name__)


async def deliver(
    jobs: Sequence[Job],
    registry: SenderRegistry,
    now: datetime,
    timeout_s: float | None = None,
) -> list[tuple[Job, Outcome | None]]:
    """Send every job; an outcome of None means no answer came within ``timeout_s``."""
    outcomes: dict[int, Outcome | None] = {}
    sends: dict[int, asyncio.Task[Outcome]] = {}
    prepared: dict[tuple[int, str, str, bool, str | None], object] = {}
    apps: dict[int, AppSenders | None] = {}

    for job in jobs:
        if job.app_id not in apps:
            apps[job.app_id] = await registry.get(job.app_id)
        verdict = _refuse(job, apps[job.app_id], now)
        if verdict is not None:
            outcomes[job.message_id] = verdict
            continue
        app = apps[job.app_id]
        assert app is not None
        sender = app.senders[job.platform]

        if job.encrypted:
            rendered = _prepare_sealed(job, sender, registry, now)
        else:
            key = (job.app_id, job.platform, job.body, job.silent, job.priority)
            if key not in prepared:
                prepared[key] = _prepare(sender, _notification(job), now)
            rendered = prepared[key]
        if isinstance(rendered, Outcome):
            outcomes[job.message_id] = rendered
            continue
        device = Device(job.message_id, job.token, job.environment)
        sends[job.message_id] = asyncio.create_task(sender.send(rendered, device))

    if sends:
        done, pending = await asyncio.wait(sends.values(), timeout=timeout_s)
        for task in pending:
            task.cancel()
        for message_id, task in sends.items():
            outcomes[message_id] = _result(task) if task in done else None

    results = [(job, outcomes[job.message_id]) for job in jobs]
    # Counted here, once per attempt, whether or not writing the outcomes back succeeds.
    metrics.count((job.platform, outcome) for job, outcome in results)
    return results


def _notification(job: Job) -> Notification:
    return Notification.from_body(
        json.loads(job.body), silent=job.silent, high_priority=job.priority != "NORMAL"
    )


def _prepare(sender: Sender, notification: Notification, now: datetime) -> object:
    """The sender's rendering of the notification, or the verdict when it cannot be sent."""
    try:
        return sender.prepare(notification, now)
    except PayloadTooLarge as exc:
        return Outcome(Verdict.FAILED, str(exc))


def _prepare_sealed(job: Job, sender: Sender, registry: SenderRegistry, now: datetime) -> object:
    try:
        sealed = registry.encryption.for_device(job)
    except CannotSeal as exc:
        return Outcome(Verdict.FAILED, str(exc))
    return _prepare(sender, sealed, now)


def warn_credential_problems(results: Sequence[tuple[Job, Outcome | None]]) -> None:
    """Alert the operator once per application and platform whose credentials were refused."""
    alerted: set[tuple[int, str]] = set()
    for job, outcome in results:
        if outcome is None or not outcome.credential_problem:
            continue
        if (job.app_id, job.platform) in alerted:
            continue
        alerted.add((job.app_id, job.platform))
        log.warning(
            "provider refused credentials app_id=%s platform=%s error=%s",
            job.app_id,
            job.platform,
            outcome.error,
        )


def _refuse(job: Job, app: AppSenders | None, now: datetime) -> Outcome | None:
    """The verdict for a job that must not go out at all, or None when it may."""
    if job.valid_until is not None and job.valid_until <= now:
        return Outcome(Verdict.FAILED, "validUntil passed before the message could be sent")
    if app is None:
        return Outcome(Verdict.FAILED, f"application {job.app_id} no longer exists")
    if job.platform not in app.senders:
        return Outcome(Verdict.FAILED, app.reason_missing(job.platform), credential_problem=True)
    return None


def _result(task: asyncio.Task[Outcome]) -> Outcome:
    exc = task.exception()
    if exc is None:
        return task.result()
    # A bug in a sender must not lose the message: log it and try again later.
    log.error("sender failed type=%s", type(exc).__name__, exc_info=exc)
    return Outcome(Verdict.RETRY, f"internal error while sending: {type(exc).__name__}")
