"""Three workers send one campaign; one is killed mid-batch; the others finish it."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from pushserver.db.models import PushCampaignDevice, PushDevice
from tests.delivery.processes import start_worker, worker_log
from tests.delivery.support import Push, ok
from tests.fakes.apns import device_token

USERS = 1200
BATCH_SIZE = 100
LEASE_S = 5


def devices_of(user: int) -> list[int]:
    """Users have one to three phones; every tenth user shares the previous user's first one."""
    own = [user * 3 + k for k in range(user % 3 + 1)]
    return [(user - 1) * 3, *own] if user % 10 == 0 and user else own


async def rows_with_status(push: Push, campaign_id: int, status: int) -> int:
    async with push.database.engine.connect() as conn:
        query = select(func.count()).where(
            PushCampaignDevice.campaign_id == campaign_id, PushCampaignDevice.status == status
        )
        return int((await conn.execute(query)).scalar_one())


async def test_killed_worker_loses_nothing_and_duplicates_stay_within_one_claim(
    push: Push, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app_id = await push.create_app(android=False, huawei=False)
    now = datetime.now(UTC)
    async with push.database.transaction() as session:
        await session.execute(
            insert(PushDevice),
            [
                {
                    "activation_id": f"act-{user}-{n}",
                    "user_id": f"user-{user}",
                    "app_id": app_id,
                    "platform": "ios",
                    "push_token": device_token(n),
                    "timestamp_created": now,
                    "is_active": True,
                }
                for user in range(USERS)
                for n in devices_of(user)
            ],
        )
    tokens = {device_token(n) for user in range(USERS) for n in devices_of(user)}

    created = await push.client.post(
        "/push/campaign/create",
        json={"requestObject": {"appId": app_id, "message": {"title": "Offer"}}},
        headers=push.sender,
    )
    campaign_id = ok(created)["id"]
    users = [f"user-{user}" for user in range(USERS)]
    await push.client.post(
        f"/push/campaign/{campaign_id}/user/add", json={"requestObject": users}, headers=push.sender
    )
    assert (
        await push.client.post(f"/push/campaign/send/live/{campaign_id}", headers=push.sender)
    ).status_code == 200
    assert (await rows_with_status(push, campaign_id, 0)) == len(tokens)

    # After the first three batches, every other device answers late once: a worker killed in
    # the middle of a batch has delivered its fast half without recording any of it.
    async with push.database.engine.connect() as conn:
        order = select(PushCampaignDevice.token).where(
            PushCampaignDevice.campaign_id == campaign_id
        )
        in_claim_order = list((await conn.scalars(order.order_by(PushCampaignDevice.id))).all())
    for token in in_claim_order[3 * BATCH_SIZE + 1 :: 2]:
        push.apns.program(token, delay=1.0, times=1)

    workers = [
        start_worker(push.settings, push.apns.url, tmp_path, BATCH_SIZE, LEASE_S) for _ in range(3)
    ]
    try:
        deadline = time.monotonic() + 60
        while await rows_with_status(push, campaign_id, 1) < 3 * BATCH_SIZE:
            assert time.monotonic() < deadline, "the workers never got going"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.4)
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait(timeout=10)

        deadline = time.monotonic() + 90
        while not ok(
            await push.client.get(f"/push/campaign/{campaign_id}/detail", headers=push.sender)
        )["sent"]:
            assert time.monotonic() < deadline, "the campaign did not finish"
            await asyncio.sleep(0.2)
    finally:
        for worker in workers[1:]:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)

    detail = ok(await push.client.get(f"/push/campaign/{campaign_id}/detail", headers=push.sender))
    total = len(tokens)
    assert detail["progress"] == {
        "total": total,
        "pending": 0,
        "sending": 0,
        "sent": total,
        "failed": 0,
    }
    counts = push.apns.counts()
    assert set(counts) == tokens, "every device got the campaign"
    twice = sum(1 for n in counts.values() if n > 1)
    with capsys.disabled():
        print(
            f"\ncampaign of {total} devices, 3 workers, one killed: all SENT, "
            f"{twice} delivered twice (bound: one claim of {BATCH_SIZE})"
        )
    assert twice <= BATCH_SIZE, "\n".join(worker_log(w)[-1500:] for w in workers)
