"""`pushserver campaign send --follow` and `campaign status`, with a worker delivering."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import TEST_MASTER_KEY
from tests.delivery.processes import start_worker
from tests.delivery.support import Push, ok


def cli(push: Push, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSH_SERVER_")} | {
        "PUSH_SERVER_DATABASE_URL": push.settings.resolved_database_url,
        "PUSH_SERVER_MASTER_KEY": TEST_MASTER_KEY,
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "pushserver", "campaign", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def test_send_follows_the_campaign_to_the_end(push: Push, tmp_path: Path) -> None:
    app_id = await push.create_app(android=False, huawei=False)
    devices = [await push.register(app_id, "ios", user_id=f"user-{n}") for n in range(20)]
    created = await push.client.post(
        "/push/campaign/create",
        json={"requestObject": {"appId": app_id, "message": {"title": "Hello"}}},
        headers=push.sender,
    )
    campaign_id = ok(created)["id"]
    await push.client.post(
        f"/push/campaign/{campaign_id}/user/add",
        json={"requestObject": [f"user-{n}" for n in range(20)]},
        headers=push.sender,
    )

    before = cli(push, "status", str(campaign_id))
    assert before.returncode == 0, before.stderr
    assert f"│ {campaign_id} " in before.stdout and "│ no " in before.stdout

    worker = start_worker(push.settings, push.apns.url, tmp_path)
    try:
        sent = cli(push, "send", str(campaign_id), "--follow")
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=30)
    assert sent.returncode == 0, sent.stderr
    assert f"campaign {campaign_id} sent live to 20 devices" in sent.stderr
    assert "│ yes " in sent.stdout and "│ 20    │ 0       │ 0       │ 20        │ 0 " in sent.stdout
    push.apns.assert_delivered_once(device.token for device in devices)

    again = cli(push, "send", str(campaign_id))
    assert again.returncode == 1
    assert "already sent live" in again.stderr

    missing = cli(push, "status", "999999")
    assert missing.returncode == 1 and "does not exist" in missing.stderr
