"""The message queue in push_message: claims, leases, and how outcomes are written back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, select

from pushserver.db.engine import Database
from pushserver.db.models import PushDevice, PushMessage
from pushserver.delivery import jobs
from pushserver.delivery.outcomes import Outcome, Verdict
from pushserver.settings import Settings

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


async def queue(database: Database, count: int, **overrides: Any) -> list[int]:
    rows = [
        {
            "app_id": 1,
            "device_registration_id": None,
            "user_id": "alice",
            "activation_id": f"a{i}",
            "platform": "ios",
            "push_token": f"token{i}",
            "silent": False,
            "personal": False,
            "encrypted": False,
            "priority": "HIGH",
            "message_body": '{"title":"hi"}',
            "status": 0,
            "attempts": 0,
            "next_attempt_at": NOW,
            "timestamp_created": NOW,
        }
        | overrides
        for i in range(count)
    ]
    async with database.transaction() as session:
        result = await session.scalars(
            insert(PushMessage).returning(PushMessage.id, sort_by_parameter_order=True), rows
        )
        return list(result.all())


async def message(database: Database, message_id: int) -> PushMessage:
    async with database.transaction() as session:
        row = await session.get(PushMessage, message_id)
        assert row is not None
        return row


async def claim(database: Database, batch_size: int, now: datetime) -> list[jobs.Job]:
    async with database.transaction() as session:
        return await jobs.claim(session, batch_size, lease_s=60, now=now)


async def record(
    database: Database, settings: Settings, results: list[tuple[jobs.Job, Outcome | None]]
) -> dict[int, int]:
    async with database.transaction() as session:
        return await jobs.record(session, results, settings, NOW)


async def test_claims_only_due_messages_in_batches(database: Database) -> None:
    due = await queue(database, 3)
    await queue(database, 2, next_attempt_at=NOW + timedelta(minutes=5))
    await queue(database, 1, status=1)

    first = await claim(database, 2, NOW)
    second = await claim(database, 2, NOW)

    assert [job.message_id for job in first + second] == due
    assert all(job.attempts == 1 for job in first + second)
    assert await claim(database, 10, NOW) == []


async def test_a_lost_lease_makes_the_message_claimable_again(database: Database) -> None:
    [message_id] = await queue(database, 1)
    assert len(await claim(database, 10, NOW)) == 1
    assert await claim(database, 10, NOW + timedelta(seconds=59)) == []

    again = await claim(database, 10, NOW + timedelta(seconds=61))
    assert [job.message_id for job in again] == [message_id]
    assert again[0].attempts == 2


async def test_released_messages_are_due_at_once(database: Database) -> None:
    ids = await queue(database, 2)
    await claim(database, 10, NOW)
    async with database.transaction() as session:
        await jobs.release(session, ids, NOW)
    assert len(await claim(database, 10, NOW)) == 2


async def test_sent_failed_and_retried_outcomes_are_recorded(
    database: Database, settings: Settings
) -> None:
    ids = await queue(database, 4)
    claimed = await claim(database, 10, NOW)
    statuses = await record(
        database,
        settings,
        [
            (claimed[0], Outcome(Verdict.SENT)),
            (claimed[1], Outcome(Verdict.FAILED, "APNs 400 BadTopic")),
            (claimed[2], Outcome(Verdict.RETRY, "APNs 503 ServiceUnavailable", retry_after_s=120)),
            (claimed[3], None),
        ],
    )
    assert statuses == {ids[0]: 1, ids[1]: -1, ids[2]: 0, ids[3]: 0}

    sent = await message(database, ids[0])
    assert sent.status == 1 and sent.timestamp_sent == NOW and sent.last_error is None
    failed = await message(database, ids[1])
    assert failed.status == -1 and failed.last_error == "APNs 400 BadTopic"
    retried = await message(database, ids[2])
    assert retried.status == 0
    assert retried.next_attempt_at is not None
    assert retried.next_attempt_at >= NOW + timedelta(seconds=120), "Retry-After is honoured"
    unanswered = await message(database, ids[3])
    assert unanswered.status == 0 and unanswered.last_error == jobs.NO_ANSWER


async def test_retries_stop_at_the_limit(database: Database, settings: Settings) -> None:
    [message_id] = await queue(database, 1, attempts=settings.retry_max_attempts - 1)
    [job] = await claim(database, 1, NOW)
    await record(database, settings, [(job, Outcome(Verdict.RETRY, "HMS 503"))])
    row = await message(database, message_id)
    assert row.status == -1
    assert row.last_error == f"gave up after {settings.retry_max_attempts} attempts; last: HMS 503"


async def test_no_retry_is_planned_past_valid_until(database: Database, settings: Settings) -> None:
    [message_id] = await queue(database, 1, valid_until=NOW + timedelta(seconds=1))
    [job] = await claim(database, 1, NOW)
    await record(database, settings, [(job, Outcome(Verdict.RETRY, "FCM 503 UNAVAILABLE"))])
    row = await message(database, message_id)
    assert row.status == -1
    assert row.last_error is not None and row.last_error.startswith("validUntil passes")


def test_backoff_grows_with_jitter_and_honours_retry_after(settings: Settings) -> None:
    base = settings.retry_base_s
    for attempts in (1, 2, 3, 4):
        ceiling = base * 2 ** (attempts - 1)
        delays = {jobs.backoff_s(settings, attempts, None) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
        assert len(delays) > 1, "jittered"
    assert jobs.backoff_s(settings, 1, 300) == 300
    assert jobs.backoff_s(settings, 100, None) <= settings.retry_max_s


async def _device(database: Database, token: str, registered: datetime) -> int:
    async with database.transaction() as session:
        device = PushDevice(
            activation_id="act",
            user_id="alice",
            app_id=1,
            platform="ios",
            push_token=token,
            is_active=True,
            timestamp_created=registered,
        )
        session.add(device)
        await session.flush()
        return device.id


async def _device_exists(database: Database, device_id: int) -> bool:
    async with database.transaction() as session:
        return (
            await session.scalar(select(PushDevice.id).where(PushDevice.id == device_id))
            is not None
        )


async def test_dead_token_deletes_the_device(database: Database, settings: Settings) -> None:
    device_id = await _device(database, "token0", NOW - timedelta(days=1))
    await queue(database, 1, device_registration_id=device_id)
    [job] = await claim(database, 1, NOW)
    await record(
        database, settings, [(job, Outcome(Verdict.DEAD_TOKEN, "APNs 400 BadDeviceToken"))]
    )
    assert not await _device_exists(database, device_id)


async def test_unregistered_keeps_a_device_that_registered_again_since(
    database: Database, settings: Settings
) -> None:
    device_id = await _device(database, "token0", NOW)
    await queue(database, 1, device_registration_id=device_id)
    [job] = await claim(database, 1, NOW)
    gone_since = NOW - timedelta(hours=1)
    outcome = Outcome(Verdict.DEAD_TOKEN, "APNs 410 Unregistered", token_invalid_since=gone_since)
    await record(database, settings, [(job, outcome)])
    assert await _device_exists(database, device_id)


async def test_a_dead_token_does_not_delete_a_device_that_changed_token(
    database: Database, settings: Settings
) -> None:
    device_id = await _device(database, "fresh-token", NOW - timedelta(days=1))
    await queue(database, 1, device_registration_id=device_id, push_token="old-token")
    [job] = await claim(database, 1, NOW)
    await record(database, settings, [(job, Outcome(Verdict.DEAD_TOKEN, "FCM 404 UNREGISTERED"))])
    assert await _device_exists(database, device_id)


async def test_credential_problems_never_delete_the_device(
    database: Database, settings: Settings
) -> None:
    device_id = await _device(database, "token0", NOW - timedelta(days=1))
    await queue(database, 1, device_registration_id=device_id)
    [job] = await claim(database, 1, NOW)
    outcome = Outcome(Verdict.FAILED, "APNs 403 InvalidProviderToken", credential_problem=True)
    await record(database, settings, [(job, outcome)])
    assert await _device_exists(database, device_id)
