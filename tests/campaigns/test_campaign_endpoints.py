"""The campaign endpoints, and a live send delivered by the worker to each device once."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import select, update

from pushserver.app import create_app
from pushserver.db.models import PushCampaignDevice
from tests.delivery.support import Push, ok

MESSAGE = {"title": "Spring offer", "body": "0% fees in April", "extras": {"offer": "spring"}}


async def create(push: Push, app_id: int, message: dict[str, Any] = MESSAGE) -> int:
    body = {"requestObject": {"appId": app_id, "message": message}}
    response = await push.client.post("/push/campaign/create", json=body, headers=push.sender)
    return int(ok(response)["id"])


async def add(push: Push, campaign_id: int, users: list[str]) -> httpx.Response:
    return await push.client.post(
        f"/push/campaign/{campaign_id}/user/add", json={"requestObject": users}, headers=push.sender
    )


async def detail(push: Push, campaign_id: int) -> dict[str, Any]:
    response = await push.client.get(f"/push/campaign/{campaign_id}/detail", headers=push.sender)
    return dict(ok(response))


async def live(push: Push, campaign_id: int) -> httpx.Response:
    return await push.client.post(f"/push/campaign/send/live/{campaign_id}", headers=push.sender)


async def run_until_idle(push: Push) -> None:
    while await push.run_worker():
        pass


async def test_create_detail_and_list(push: Push) -> None:
    app_id = await push.create_app()
    campaign_id = await create(push, app_id)

    campaign = await detail(push, campaign_id)
    assert campaign["id"] == campaign_id and campaign["appId"] == app_id
    assert campaign["sent"] is False
    assert campaign["message"] == MESSAGE
    assert campaign["progress"] == {"total": 0, "pending": 0, "sending": 0, "sent": 0, "failed": 0}

    listed = ok(await push.client.get("/push/campaign/list", headers=push.sender))
    assert [c["id"] for c in listed] == [campaign_id]


async def test_users_are_added_without_duplicates_listed_by_page_and_deleted(push: Push) -> None:
    campaign_id = await create(push, await push.create_app())
    assert (await add(push, campaign_id, ["alice", "bob", "alice"])).status_code == 200
    assert (await add(push, campaign_id, ["bob", "carol"])).status_code == 200

    page = await push.client.get(
        f"/push/campaign/{campaign_id}/user/list?page=0&size=2", headers=push.sender
    )
    assert page.json() == {
        "status": "OK",
        "responseObject": {"campaignId": campaign_id, "users": ["alice", "bob"]},
        "page": 0,
        "size": 2,
    }
    second = await push.client.get(
        f"/push/campaign/{campaign_id}/user/list?page=1&size=2", headers=push.sender
    )
    assert ok(second)["users"] == ["carol"]

    removed = await push.client.request(
        "DELETE",
        f"/push/campaign/{campaign_id}/user/delete",
        json={"requestObject": ["bob"]},
        headers=push.sender,
    )
    assert removed.status_code == 200
    everyone = await push.client.get(f"/push/campaign/{campaign_id}/user/list", headers=push.sender)
    assert ok(everyone)["users"] == ["alice", "carol"]


async def test_a_hundred_thousand_users_in_one_call(push: Push) -> None:
    campaign_id = await create(push, await push.create_app())
    users = [f"user-{n}" for n in range(100_000)]
    # The suite's server refuses bodies over 64 KiB; this one has the default limit.
    server = create_app(push.settings.model_copy(update={"max_body_bytes": 16 * 1024 * 1024}))
    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            started = time.monotonic()
            response = await client.post(
                f"/push/campaign/{campaign_id}/user/add",
                json={"requestObject": users},
                headers=push.sender,
                timeout=120,
            )
            elapsed_s = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert elapsed_s < 60
    last = await push.client.get(
        f"/push/campaign/{campaign_id}/user/list?page=99&size=1000", headers=push.sender
    )
    assert ok(last)["users"][-1] == "user-99999"
    assert len(ok(last)["users"]) == 1000


async def test_live_send_reaches_each_device_once_and_completes(push: Push) -> None:
    app_id = await push.create_app()
    alice = [await push.register(app_id, p, user_id="alice") for p in ("ios", "android", "huawei")]
    bob_ios = await push.register(app_id, "ios", user_id="bob")
    # carol's phone holds bob's token too: one device, one delivery.
    await push.register(app_id, "ios", user_id="carol", token=bob_ios.token)
    await push.register(app_id, "android", user_id="nobody-in-campaign")
    campaign_id = await create(push, app_id)
    await add(push, campaign_id, ["alice", "bob", "carol", "dave"])

    assert (await live(push, campaign_id)).status_code == 200
    progress = (await detail(push, campaign_id))["progress"]
    assert progress == {"total": 4, "pending": 4, "sending": 0, "sent": 0, "failed": 0}

    await run_until_idle(push)

    campaign = await detail(push, campaign_id)
    assert campaign["sent"] is True and campaign["timestampSent"]
    assert campaign["progress"] == {"total": 4, "pending": 0, "sending": 0, "sent": 4, "failed": 0}
    push.apns.assert_delivered_once([alice[0].token, bob_ios.token])
    push.google.assert_delivered_once([alice[1].token])
    push.hms.assert_delivered_once([alice[2].token])
    [request] = [r for r in push.apns.requests() if r.token == alice[0].token]
    assert request.body["aps"]["alert"] == {"title": "Spring offer", "body": "0% fees in April"}
    assert request.body["offer"] == "spring"


async def test_live_send_happens_once_and_freezes_the_users(push: Push) -> None:
    app_id = await push.create_app()
    await push.register(app_id, "ios", user_id="alice")
    campaign_id = await create(push, app_id)
    await add(push, campaign_id, ["alice"])
    assert (await live(push, campaign_id)).status_code == 200

    again = await live(push, campaign_id)
    assert again.status_code == 409
    assert again.json()["responseObject"]["code"] == "ERROR_CONFLICT"
    assert (await add(push, campaign_id, ["bob"])).status_code == 409

    await run_until_idle(push)
    assert (await live(push, campaign_id)).status_code == 409
    assert (await add(push, campaign_id, ["bob"])).status_code == 409
    assert len(push.apns.requests()) == 1


async def test_live_send_of_an_empty_campaign_completes_at_once(push: Push) -> None:
    campaign_id = await create(push, await push.create_app())
    assert (await live(push, campaign_id)).status_code == 200
    campaign = await detail(push, campaign_id)
    assert campaign["sent"] is True
    assert campaign["progress"]["total"] == 0
    all_campaigns = ok(await push.client.get("/push/campaign/list?all=true", headers=push.sender))
    assert campaign_id in [c["id"] for c in all_campaigns]
    unsent = ok(await push.client.get("/push/campaign/list", headers=push.sender))
    assert campaign_id not in [c["id"] for c in unsent]


async def test_deleted_campaign_is_gone(push: Push) -> None:
    campaign_id = await create(push, await push.create_app())
    await add(push, campaign_id, ["alice"])
    deleted = await push.client.request(
        "DELETE", f"/push/campaign/{campaign_id}/delete", headers=push.sender
    )
    assert ok(deleted) == {"deleted": True}
    for response in (
        await live(push, campaign_id),
        await add(push, campaign_id, ["bob"]),
        await push.client.get(f"/push/campaign/{campaign_id}/detail", headers=push.sender),
        await push.client.post(f"/push/campaign/{campaign_id}/delete", headers=push.sender),
    ):
        assert response.status_code == 404
        assert response.json()["responseObject"]["code"] == "ERROR_NOT_FOUND"

    # The deleted campaign was the newest: the next one does not take its id.
    assert await create(push, await push.create_app()) > campaign_id
    missing = await push.client.get(f"/push/campaign/{campaign_id}/detail", headers=push.sender)
    assert missing.status_code == 404


async def test_test_send_goes_to_one_user_synchronously(push: Push) -> None:
    app_id = await push.create_app()
    alice = await push.register(app_id, "ios", user_id="alice")
    await push.register(app_id, "ios", user_id="bob")
    campaign_id = await create(push, app_id)
    response = await push.client.post(
        f"/push/campaign/send/test/{campaign_id}",
        json={"requestObject": {"userId": "alice"}},
        headers=push.sender,
    )
    assert response.json() == {"status": "OK"}
    assert [r.token for r in push.apns.requests()] == [alice.token]
    assert (await detail(push, campaign_id))["sent"] is False


async def test_refusals(push: Push) -> None:
    app_id = await push.create_app()
    unknown_app = await push.client.post(
        "/push/campaign/create",
        json={"requestObject": {"appId": 999_999, "message": MESSAGE}},
        headers=push.sender,
    )
    assert unknown_app.status_code == 404
    for path in ("/push/campaign/424242/detail", "/push/campaign/424242/user/list"):
        assert (await push.client.get(path, headers=push.sender)).status_code == 404
    assert (await live(push, 424242)).status_code == 404

    forbidden = await push.client.post(
        "/push/campaign/create",
        json={"requestObject": {"appId": app_id, "message": MESSAGE}},
        headers=push.registrar,
    )
    assert forbidden.status_code == 403

    campaign_id = await create(push, app_id)
    for users in ([], [5], "alice", [""]):
        bad = await add(push, campaign_id, users)  # type: ignore[arg-type]
        assert bad.status_code == 400, users
        assert bad.json()["responseObject"]["violations"]
    bad_message = await push.client.post(
        "/push/campaign/create",
        json={"requestObject": {"appId": app_id, "message": {"extras": {"aps": 1}}}},
        headers=push.sender,
    )
    assert bad_message.status_code == 400

    campaigns = ok(await push.client.get("/push/campaign/list?all=true", headers=push.sender))
    too_large = await push.client.post(
        "/push/campaign/create",
        json={"requestObject": {"appId": app_id, "message": {"body": "x" * 5000}}},
        headers=push.sender,
    )
    assert too_large.status_code == 413
    error = too_large.json()["responseObject"]
    assert error["code"] == "ERROR_PAYLOAD_TOO_LARGE"
    assert [v["fieldName"] for v in error["violations"]] == ["requestObject.message"]
    after = ok(await push.client.get("/push/campaign/list?all=true", headers=push.sender))
    assert after == campaigns


async def test_one_worker_batch_carries_messages_and_campaign_devices(push: Push) -> None:
    app_id = await push.create_app()
    alice = await push.register(app_id, "ios", user_id="alice")
    bob = await push.register(app_id, "android", user_id="bob")
    campaign_id = await create(push, app_id)
    await add(push, campaign_id, ["alice", "bob"])
    await live(push, campaign_id)
    queued = await push.send_ok(
        app_id, {"userId": "alice", "body": {"title": "Payment"}}, "ASYNCHRONOUS"
    )
    assert queued["ios"]["pending"] == 1

    assert await push.run_worker() == 3
    assert (await detail(push, campaign_id))["sent"] is True
    titles = sorted(r.body["aps"]["alert"]["title"] for r in push.apns.requests())
    assert titles == ["Payment", "Spring offer"]
    assert push.apns.counts() == {alice.token: 2}
    push.google.assert_delivered_once([bob.token])


async def test_an_idle_worker_completes_a_campaign_whose_last_rows_raced(push: Push) -> None:
    app_id = await push.create_app()
    await push.register(app_id, "ios", user_id="alice")
    campaign_id = await create(push, app_id)
    await add(push, campaign_id, ["alice"])
    await live(push, campaign_id)
    # As if two workers recorded their last batches at once, each before the other committed.
    async with push.database.transaction() as session:
        await session.execute(
            update(PushCampaignDevice)
            .where(PushCampaignDevice.campaign_id == campaign_id)
            .values(status=1)
        )
    assert (await detail(push, campaign_id))["sent"] is False

    assert await push.run_worker() == 0
    assert (await detail(push, campaign_id))["sent"] is True


async def test_provider_answers_dead_tokens_retries_and_refusals_in_a_campaign(push: Push) -> None:
    app_id = await push.create_app()
    dead = await push.register(app_id, "ios", user_id="alice")
    busy = await push.register(app_id, "android", user_id="bob")
    fine = await push.register(app_id, "ios", user_id="carol")
    refused = await push.register(app_id, "android", user_id="dave")
    push.program(dead, "BadDeviceToken")
    push.program(busy, "UNAVAILABLE", times=1)
    push.program(refused, "INVALID_ARGUMENT")
    campaign_id = await create(push, app_id)
    await add(push, campaign_id, ["alice", "bob", "carol", "dave"])
    assert (await live(push, campaign_id)).status_code == 200

    await run_until_idle(push)
    # bob's device waits for its retry; the campaign is not done before it.
    campaign = await detail(push, campaign_id)
    assert campaign["sent"] is False
    assert campaign["progress"] == {"total": 4, "pending": 1, "sending": 0, "sent": 1, "failed": 2}
    async with push.database.transaction() as session:
        await session.execute(
            update(PushCampaignDevice)
            .where(PushCampaignDevice.status == 0)
            .values(next_attempt_at=datetime.now(UTC))
        )
    await run_until_idle(push)

    campaign = await detail(push, campaign_id)
    assert campaign["sent"] is True
    assert campaign["progress"] == {"total": 4, "pending": 0, "sending": 0, "sent": 2, "failed": 2}
    async with push.database.engine.connect() as conn:
        query = select(PushCampaignDevice.token, PushCampaignDevice.last_error).where(
            PushCampaignDevice.campaign_id == campaign_id
        )
        errors = {token: error for token, error in await conn.execute(query)}
    assert errors == {
        dead.token: "APNs 400 BadDeviceToken",
        busy.token: None,
        fine.token: None,
        refused.token: errors[refused.token],
    }
    assert errors[refused.token] and errors[refused.token].startswith("FCM 400 INVALID_ARGUMENT")
    # The dead token's device is gone from the app; a refused message leaves its device be.
    assert not await push.device_exists(dead)
    assert await push.device_exists(refused)
    assert [r.status for r in push.requests_for(busy)] == [503, 200]
    push.apns.assert_delivered_once([fine.token])
