"""A credential update through the API reaches a running worker within 5 seconds."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import httpx
import jwt

from pushserver.settings import Settings
from tests.conftest import b64
from tests.delivery.processes import start_worker
from tests.fakes.apns import ApnsFake, ApnsKey, device_token

TOKEN = device_token(7)


def ios_credentials(key: ApnsKey) -> dict[str, object]:
    return {
        "appId": 1,
        "bundle": key.topic,
        "keyId": key.key_id,
        "teamId": key.team_id,
        "privateKeyBase64": b64(key.private_pem),
    }


async def queue_one(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    request = {
        "appId": 1,
        "mode": "ASYNCHRONOUS",
        "message": {"userId": "alice", "body": {"title": "hi"}},
    }
    response = await client.post(
        "/push/message/send", json={"requestObject": request}, headers=admin
    )
    assert response.status_code == 200, response.text


def key_ids_seen(fake: ApnsFake) -> list[str]:
    return [
        jwt.get_unverified_header(r.headers["authorization"].removeprefix("bearer "))["kid"]
        for r in fake.requests()
        if r.status == 200
    ]


async def test_a_rotated_apns_key_is_used_within_five_seconds(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    settings: Settings,
    apns_fake: ApnsFake,
    fake_apns_key: ApnsKey,
    tmp_path: Path,
) -> None:
    rotated = ApnsKey(key_id="ROTATED001", team_id=fake_apns_key.team_id)
    apns_fake.add_key(rotated)
    await client.post("/admin/app/create", json={"requestObject": {"appId": 1}}, headers=admin)
    await client.post(
        "/admin/app/ios/update",
        json={"requestObject": ios_credentials(fake_apns_key)},
        headers=admin,
    )
    device = {
        "appId": 1,
        "token": TOKEN,
        "platform": "ios",
        "activationId": "act-1",
        "userId": "alice",
        "activationStatus": "ACTIVE",
    }
    await client.post("/push/device/create", json={"requestObject": device}, headers=admin)

    worker = start_worker(settings, apns_fake.url, tmp_path)
    try:
        await queue_one(client, admin)
        deadline = time.monotonic() + 30
        while not key_ids_seen(apns_fake) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert key_ids_seen(apns_fake) == [fake_apns_key.key_id]

        response = await client.post(
            "/admin/app/ios/update", json={"requestObject": ios_credentials(rotated)}, headers=admin
        )
        assert response.status_code == 200
        updated = time.monotonic()

        while rotated.key_id not in key_ids_seen(apns_fake):
            assert time.monotonic() - updated < 5, f"still signing with {key_ids_seen(apns_fake)}"
            await queue_one(client, admin)
            await asyncio.sleep(0.25)
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert worker.returncode == 0
