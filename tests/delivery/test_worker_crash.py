"""A worker killed mid-way loses nothing: another one finishes, at most one claim sent twice."""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, insert, select

from pushserver.db.engine import Database
from pushserver.db.models import PushDevice, PushMessage
from pushserver.settings import Settings
from tests.conftest import b64
from tests.delivery.processes import start_worker, worker_log
from tests.fakes.apns import ApnsFake, ApnsKey, device_token

MESSAGES = 2000
BATCH_SIZE = 100
LEASE_S = 5


async def count(database: Database, status: int) -> int:
    async with database.engine.connect() as conn:
        query = select(func.count()).select_from(PushMessage).where(PushMessage.status == status)
        return int((await conn.execute(query)).scalar_one())


async def wait_for(database: Database, status: int, at_least: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (reached := await count(database, status)) < at_least:
        if time.monotonic() > deadline:
            return reached
        await _sleep(0.05)
    return reached


async def _sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


async def test_sigkill_mid_batch_loses_no_message(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    database: Database,
    settings: Settings,
    apns_fake: ApnsFake,
    fake_apns_key: ApnsKey,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    key = fake_apns_key
    await client.post("/admin/app/create", json={"requestObject": {"appId": 1}}, headers=admin)
    ios = {
        "appId": 1,
        "bundle": key.topic,
        "keyId": key.key_id,
        "teamId": key.team_id,
        "privateKeyBase64": b64(key.private_pem),
    }
    response = await client.post(
        "/admin/app/ios/update", json={"requestObject": ios}, headers=admin
    )
    assert response.status_code == 200

    tokens = [device_token(n) for n in range(MESSAGES)]
    async with database.transaction() as session:
        await session.execute(
            insert(PushDevice),
            [
                {
                    "activation_id": f"act-{n}",
                    "user_id": f"user-{n}",
                    "app_id": 1,
                    "platform": "ios",
                    "push_token": token,
                    "timestamp_created": datetime.now(UTC),
                    "is_active": True,
                }
                for n, token in enumerate(tokens)
            ],
        )
    for start in range(0, MESSAGES, 1000):
        batch = [
            {"userId": f"user-{n}", "body": {"title": "hi"}} for n in range(start, start + 1000)
        ]
        request = {"appId": 1, "mode": "ASYNCHRONOUS", "batch": batch}
        response = await client.post(
            "/push/message/batch/send", json={"requestObject": request}, headers=admin
        )
        assert response.status_code == 200, response.text

    # In the fourth batch every other device answers late (once), so the batch is half delivered
    # when the worker dies: its fast half reached the devices, none of it is recorded.
    for n in range(3 * BATCH_SIZE + 1, 4 * BATCH_SIZE, 2):
        apns_fake.program(tokens[n], delay=1.0, times=1)
    first = start_worker(settings, apns_fake.url, tmp_path, BATCH_SIZE, LEASE_S)
    try:
        sent_before_kill = await wait_for(database, 1, 3 * BATCH_SIZE, timeout_s=60)
        assert sent_before_kill >= 3 * BATCH_SIZE, "the first worker never got going"
        await _sleep(0.4)  # the fast half of the batch in flight is answered by now
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert await count(database, 1) < MESSAGES, "the worker finished before it was killed"

    second = start_worker(settings, apns_fake.url, tmp_path, BATCH_SIZE, LEASE_S)
    try:
        sent = await wait_for(database, 1, MESSAGES, timeout_s=60 + LEASE_S)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert sent == MESSAGES, worker_log(second)[-2000:]
    assert await count(database, 0) == 0 and await count(database, -1) == 0

    counts = apns_fake.counts()
    assert set(counts) == set(tokens), "every token got the message"
    twice = sum(1 for n in counts.values() if n > 1)
    with capsys.disabled():
        print(
            f"\nworker killed after {sent_before_kill} SENT: all {MESSAGES} messages SENT, "
            f"{twice} delivered twice (bound: one claim of {BATCH_SIZE})"
        )
    assert twice <= BATCH_SIZE
    assert max(counts.values()) <= 2
