"""What the send endpoints put on the wire for APNs, FCM and HMS, as the fakes recorded it, and
what they answer: counts per platform, routing, device selection, modes and refusals."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import jwt
import pytest

from pushserver.messages.schemas import PENDING, SENT
from tests.conftest import table_rows
from tests.delivery.support import (
    BATCH,
    Device,
    Json,
    Push,
    apns_headers,
    counts,
    error_of,
    message,
)
from tests.fakes.google import JWT_BEARER, SCOPE
from tests.fakes.runner import RecordedRequest

FULL_BODY: Json = {
    "title": "Payment received",
    "body": "You received 120 EUR",
    "badge": 3,
    "sound": "default",
    "icon": "ic_payment",
    "category": "payments",
    "collapseKey": "payments",
    "extras": {"paymentId": "P-123"},
}
FULL_NOTIFICATION: Json = {
    "title": "Payment received",
    "body": "You received 120 EUR",
    "icon": "ic_payment",
    "sound": "default",
    "tag": "payments",
}
TOPIC = "com.example.app"
ALL_SENT = {"ios": counts(sent=1), "android": counts(sent=1), "huawei": counts(sent=1)}
NO_DEVICES = {"ios": counts(), "android": counts(), "huawei": counts()}


@dataclass(frozen=True)
class Wire:
    """One message sent to alice's three devices, and the request each provider received."""

    devices: dict[str, Device]
    apns: RecordedRequest
    fcm: RecordedRequest
    hms: RecordedRequest
    sent_at: float


async def send_to_all(push: Push, body: Json) -> Wire:
    app_id, devices = await push.app_with_devices()
    sent_at = time.time()
    result = await push.send_ok(app_id, body)
    assert result == {"mode": "SYNCHRONOUS", **ALL_SENT}
    [apns] = push.apns_requests()
    [fcm] = push.fcm_requests()
    [hms] = push.hms_requests()
    assert [(row.status, row.attempts) for row in await push.rows()] == [(SENT, 1)] * 3
    return Wire(devices, apns, fcm, hms, sent_at)


def hms_data(wire: Wire) -> Any:
    """HMS ``message.data`` parsed, after checking it is one JSON string."""
    data = wire.hms.body["message"]["data"]
    assert isinstance(data, str)
    return json.loads(data)


def ttl_s(value: str) -> int:
    assert value.endswith("s") and value[:-1].isdigit(), value
    return int(value[:-1])


# Payloads


FULL_APNS_PAYLOAD: Json = {
    "aps": {
        "alert": {"title": "Payment received", "body": "You received 120 EUR"},
        "badge": 3,
        "sound": "default",
        "category": "payments",
    },
    "paymentId": "P-123",
}


def full_fcm_message(wire: Wire, priority: str) -> Json:
    return {
        "message": {
            "token": wire.devices["android"].token,
            "data": {"paymentId": "P-123"},
            "android": {
                "priority": priority,
                "collapse_key": "payments",
                "notification": FULL_NOTIFICATION | {"notification_count": 3},
            },
        }
    }


def full_hms_message(wire: Wire, urgency: str) -> Json:
    """The HMS request expected for FULL_BODY; ``data`` and ``collapse_key`` are checked for
    their form here and taken from the request."""
    message = wire.hms.body["message"]
    assert hms_data(wire) == {"paymentId": "P-123"}
    collapse_key = message["android"]["collapse_key"]
    assert isinstance(collapse_key, int) and 0 <= collapse_key <= 100
    return {
        "validate_only": False,
        "message": {
            "token": [wire.devices["huawei"].token],
            "data": message["data"],
            "android": {
                "urgency": urgency,
                "collapse_key": collapse_key,
                "notification": FULL_NOTIFICATION
                | {"click_action": {"type": 3}, "badge": {"set_num": 3}},
            },
        },
    }


async def test_full_alert_message(push: Push) -> None:
    wire = await send_to_all(push, message(body=FULL_BODY))

    assert wire.apns.method == "POST"
    assert wire.apns.path == f"/3/device/{wire.devices['ios'].token}"
    assert apns_headers(wire.apns) == {
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-collapse-id": "payments",
    }
    apns_id = wire.apns.headers["apns-id"]
    assert str(uuid.UUID(apns_id)) == apns_id.lower()
    header, claims = push.apns_jwt(wire.apns)
    assert header == {"alg": "ES256", "kid": push.apns_key.key_id}
    assert set(claims) == {"iss", "iat"} and claims["iss"] == push.apns_key.team_id
    assert int(wire.sent_at) <= claims["iat"] <= time.time()
    assert wire.apns.body == FULL_APNS_PAYLOAD

    assert wire.fcm.method == "POST"
    assert wire.fcm.path == f"/v1/projects/{push.account.project_id}/messages:send"
    assert wire.fcm.body == full_fcm_message(wire, "high")

    assert wire.hms.method == "POST"
    assert wire.hms.path == f"/v2/{push.hms_app.project_id}/messages:send"
    assert wire.hms.body == full_hms_message(wire, "HIGH")


async def test_provider_access_tokens(push: Push) -> None:
    """FCM's bearer comes from the service account's signed assertion, HMS's from the client
    credentials; each is fetched once and reused."""
    app_id, _ = await push.app_with_devices()
    await push.send_ok(app_id, message())
    await push.send_ok(app_id, message())

    [token_request] = push.google.requests("/token")
    form = token_request.body
    assert set(form) == {"grant_type", "assertion"} and form["grant_type"] == JWT_BEARER
    assertion = form["assertion"]
    header = jwt.get_unverified_header(assertion)
    assert header["alg"] == "RS256" and header["kid"] == push.account.private_key_id
    claims = jwt.decode(
        assertion,
        push.account.private_key.public_key(),
        algorithms=["RS256"],
        audience="https://oauth2.googleapis.com/token",
    )
    assert claims["iss"] == push.account.client_email and claims["scope"] == SCOPE
    assert claims["exp"] == claims["iat"] + 3600
    access_token = token_request.answer["access_token"]
    assert [r.headers["authorization"] for r in push.fcm_requests()] == [
        f"Bearer {access_token}"
    ] * 2

    [hms_token] = push.hms.requests("/oauth2/v3/token")
    assert hms_token.body == {
        "grant_type": "client_credentials",
        "client_id": push.hms_app.client_id,
        "client_secret": push.hms_app.client_secret,
    }
    hms_access = hms_token.answer["access_token"]
    assert [r.headers["authorization"] for r in push.hms_requests()] == [f"Bearer {hms_access}"] * 2

    # One APNs JWT serves both messages.
    assert len({r.headers["authorization"] for r in push.apns_requests()}) == 1


async def test_silent_message(push: Push) -> None:
    body = {
        "title": "Sync",
        "body": "not shown",
        "badge": 1,
        "sound": "default",
        "category": "sync",
        "extras": {"sync": "inbox"},
    }
    wire = await send_to_all(push, message(body=body, priority="HIGH", attributes={"silent": True}))

    assert apns_headers(wire.apns) == {
        "apns-topic": TOPIC,
        "apns-push-type": "background",
        "apns-priority": "5",
    }
    assert wire.apns.body == {"aps": {"content-available": 1}, "sync": "inbox"}
    assert wire.fcm.body == {
        "message": {
            "token": wire.devices["android"].token,
            "data": {"sync": "inbox"},
            "android": {"priority": "normal"},
        }
    }
    assert hms_data(wire) == {"sync": "inbox"}
    assert wire.hms.body["message"] == {
        "token": [wire.devices["huawei"].token],
        "data": wire.hms.body["message"]["data"],
        "android": {"urgency": "NORMAL"},
    }


async def test_localized_message(push: Push) -> None:
    body = {
        "titleLocKey": "PAYMENT_TITLE",
        "titleLocArgs": ["120", "EUR"],
        "bodyLocKey": "PAYMENT_BODY",
        "bodyLocArgs": ["Alice", "120 EUR"],
    }
    wire = await send_to_all(push, message(body=body))

    assert apns_headers(wire.apns) == {
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
    }
    assert wire.apns.body == {
        "aps": {
            "alert": {
                "title-loc-key": "PAYMENT_TITLE",
                "title-loc-args": ["120", "EUR"],
                "loc-key": "PAYMENT_BODY",
                "loc-args": ["Alice", "120 EUR"],
            }
        }
    }
    notification = {
        "title_loc_key": "PAYMENT_TITLE",
        "title_loc_args": ["120", "EUR"],
        "body_loc_key": "PAYMENT_BODY",
        "body_loc_args": ["Alice", "120 EUR"],
    }
    assert wire.fcm.body == {
        "message": {
            "token": wire.devices["android"].token,
            "android": {"priority": "high", "notification": notification},
        }
    }
    assert wire.hms.body == {
        "validate_only": False,
        "message": {
            "token": [wire.devices["huawei"].token],
            "android": {
                "urgency": "HIGH",
                "notification": notification | {"click_action": {"type": 3}},
            },
        },
    }


@pytest.mark.parametrize(
    ("ahead", "fcm_cap", "hms_cap"),
    [
        (timedelta(hours=1), None, None),
        (timedelta(days=20), None, 15 * 24 * 3600),
        (timedelta(days=40), 28 * 24 * 3600, 15 * 24 * 3600),
    ],
    ids=["1h", "20d", "40d"],
)
async def test_valid_until(
    push: Push, ahead: timedelta, fcm_cap: int | None, hms_cap: int | None
) -> None:
    valid_until = (datetime.now(UTC) + ahead).replace(microsecond=0)
    # Given in another zone: the wire carries the same instant.
    local = valid_until.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert not local.endswith(("Z", "+00:00"))
    wire = await send_to_all(push, message(body={"title": "Offer", "validUntil": local}))

    assert apns_headers(wire.apns) == {
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-expiration": str(int(valid_until.timestamp())),
    }
    remaining = valid_until.timestamp() - wire.sent_at
    for ttl, cap in (
        (wire.fcm.body["message"]["android"]["ttl"], fcm_cap),
        (wire.hms.body["message"]["android"]["ttl"], hms_cap),
    ):
        if cap is None:
            assert remaining - 3 <= ttl_s(ttl) <= remaining
        else:
            assert ttl_s(ttl) == cap
    assert wire.fcm.body["message"]["android"] == {
        "priority": "high",
        "ttl": wire.fcm.body["message"]["android"]["ttl"],
        "notification": {"title": "Offer"},
    }
    assert wire.hms.body["message"]["android"] == {
        "urgency": "HIGH",
        "ttl": wire.hms.body["message"]["android"]["ttl"],
        "notification": {"title": "Offer", "click_action": {"type": 3}},
    }


async def test_normal_priority(push: Push) -> None:
    wire = await send_to_all(push, message(priority="NORMAL", body=FULL_BODY))

    assert apns_headers(wire.apns) == {
        "apns-topic": TOPIC,
        "apns-push-type": "alert",
        "apns-priority": "5",
        "apns-collapse-id": "payments",
    }
    assert wire.apns.body == FULL_APNS_PAYLOAD
    assert wire.fcm.body == full_fcm_message(wire, "normal")
    assert wire.hms.body == full_hms_message(wire, "NORMAL")


async def test_non_string_extras(push: Push) -> None:
    extras = {
        "amount": 120.5,
        "count": 3,
        "urgent": True,
        "tags": ["a", "b"],
        "meta": {"k": "v", "n": [1, 2]},
        "none": None,
        "text": "plain",
    }
    wire = await send_to_all(push, message(body={"title": "Data", "extras": extras}))

    assert wire.apns.body == {"aps": {"alert": {"title": "Data"}}, **extras}

    data = wire.fcm.body["message"]["data"]
    assert set(data) == set(extras) and all(isinstance(value, str) for value in data.values())
    assert data["text"] == "plain"
    assert data["count"] == "3" and data["urgent"] == "true" and data["none"] == "null"
    assert {key: json.loads(data[key]) for key in extras if key != "text"} == {
        key: value for key, value in extras.items() if key != "text"
    }

    assert hms_data(wire) == extras


@pytest.mark.parametrize(("key", "expected"), [("7", 7), ("-1", -1), ("100", 100)])
async def test_hms_numeric_collapse_key_is_kept(push: Push, key: str, expected: int) -> None:
    wire = await send_to_all(push, message(body={"title": "t", "collapseKey": key}))
    assert wire.hms.body["message"]["android"]["collapse_key"] == expected
    assert wire.fcm.body["message"]["android"]["collapse_key"] == key
    assert wire.apns.headers["apns-collapse-id"] == key


async def test_hms_other_collapse_keys_hash_stably_into_range(push: Push) -> None:
    app_id, _ = await push.app_with_devices()
    for key in ("payments", "101", "payments"):
        await push.send_ok(app_id, message(body={"title": "t", "collapseKey": key}))
    keys = [r.body["message"]["android"]["collapse_key"] for r in push.hms_requests()]
    assert all(isinstance(k, int) and 0 <= k <= 100 for k in keys)
    assert keys[0] == keys[2]


async def test_every_message_has_its_own_apns_id(push: Push) -> None:
    app_id = await push.create_app()
    await push.register(app_id, "ios")
    await push.register(app_id, "ios")
    await push.send_ok(app_id, message())
    ids = [uuid.UUID(r.headers["apns-id"]) for r in push.apns_requests()]
    assert len(set(ids)) == 2


# Routing and selection


async def test_ios_environment_of_the_device(push: Push) -> None:
    app_id = await push.create_app()
    development = await push.register(app_id, "ios", environment="development")
    production = await push.register(app_id, "ios", environment="production")
    unspecified = await push.register(app_id, "ios")

    result = await push.send_ok(app_id, message())

    assert result["ios"] == counts(sent=3)
    assert [r.token for r in push.apns_requests(push.sandbox)] == [development.token]
    production_tokens = [r.token for r in push.apns_requests()]
    assert len(production_tokens) == 2
    assert set(production_tokens) == {production.token, unspecified.token}


@pytest.mark.parametrize(
    ("app_environment", "device_environment"),
    [("production", "development"), ("development", "production")],
)
async def test_ios_environment_of_the_application_wins(
    push: Push, app_environment: str, device_environment: str
) -> None:
    app_id = await push.create_app(ios_environment=app_environment)
    device = await push.register(app_id, "ios", environment=device_environment)

    assert (await push.send_ok(app_id, message()))["ios"] == counts(sent=1)

    chosen, other = (
        (push.apns, push.sandbox) if app_environment == "production" else (push.sandbox, push.apns)
    )
    assert [r.token for r in push.apns_requests(chosen)] == [device.token]
    assert push.apns_requests(other) == []


async def test_providers_are_reached_over_a_few_http2_connections(push: Push) -> None:
    app_id = await push.create_app()
    for platform in ("ios", "android", "huawei"):
        for _ in range(20):
            await push.register(app_id, platform)

    result = await push.send_ok(app_id, message())

    assert result == {
        "mode": "SYNCHRONOUS",
        **{platform: counts(sent=20) for platform in ("ios", "android", "huawei")},
    }
    settings = push.settings
    for fake, pool_size in (
        (push.apns, settings.apns_connections),
        (push.google, settings.fcm_connections),
        (push.hms, settings.hms_connections),
    ):
        stats = fake.stats()
        assert stats["http1_connections"] == 0, stats
        assert 1 <= stats["http2_connections"] <= pool_size, stats


async def test_personal_messages_reach_only_active_devices(push: Push) -> None:
    app_id = await push.create_app()
    active = await push.register(app_id, "ios", status="ACTIVE")
    blocked = await push.register(app_id, "android", status="BLOCKED")
    created = await push.register(app_id, "huawei", status="CREATED")

    personal = await push.send_ok(app_id, message(attributes={"personal": True}))
    assert personal == {
        "mode": "SYNCHRONOUS",
        "ios": counts(sent=1),
        "android": counts(),
        "huawei": counts(),
    }
    assert [r.token for r in push.apns_requests()] == [active.token]
    assert push.fcm_requests() == [] and push.hms_requests() == []
    assert [row.device_registration_id for row in await push.rows()] == [active.id]

    # Without the attribute, every device of the user.
    everyone = await push.send_ok(app_id, message())
    assert everyone == {"mode": "SYNCHRONOUS", **ALL_SENT}
    assert [r.token for r in push.fcm_requests()] == [blocked.token]
    assert [r.token for r in push.hms_requests()] == [created.token]


async def test_activation_id_narrows_to_one_device(push: Push) -> None:
    app_id = await push.create_app()
    chosen = await push.register(app_id, "ios")
    await push.register(app_id, "ios")
    await push.register(app_id, "android")
    await push.register(app_id, "ios", user_id="bob")

    result = await push.send_ok(app_id, message(activationId=chosen.activation_id))

    assert result == {
        "mode": "SYNCHRONOUS",
        "ios": counts(sent=1),
        "android": counts(),
        "huawei": counts(),
    }
    assert [r.token for r in push.apns_requests()] == [chosen.token]
    assert push.fcm_requests() == []
    [row] = await push.rows()
    assert row.device_registration_id == chosen.id and row.activation_id == chosen.activation_id


async def test_platform_without_credentials_counts_as_failed(push: Push) -> None:
    app_id = await push.create_app(android=False, huawei=False)
    ios = await push.register(app_id, "ios")
    android = await push.register(app_id, "android")
    huawei = await push.register(app_id, "huawei")

    result = await push.send_ok(app_id, message())

    assert result == {
        "mode": "SYNCHRONOUS",
        "ios": counts(sent=1),
        "android": counts(failed=1),
        "huawei": counts(failed=1),
    }
    assert push.fcm_requests() == [] and push.hms_requests() == []
    for device, provider in ((android, "FCM"), (huawei, "HMS")):
        detail = await push.detail((await push.row_for(device)).id)
        assert detail["status"] == "FAILED"
        assert detail["lastError"] == f"the application has no {provider} credentials"
        assert "nextAttemptAt" not in detail
        assert await push.device_exists(device)
    assert (await push.detail((await push.row_for(ios)).id))["status"] == "SENT"


async def test_user_without_devices_gets_zero_counts(push: Push) -> None:
    app_id = await push.create_app()
    await push.register(app_id, "ios", user_id="bob")

    assert await push.send_ok(app_id, message("alice")) == {"mode": "SYNCHRONOUS", **NO_DEVICES}
    assert await push.send_ok(app_id, message("alice"), mode="ASYNCHRONOUS") == {
        "mode": "ASYNCHRONOUS",
        **NO_DEVICES,
        "messageIds": [],
    }
    assert await push.rows() == []
    assert push.apns_requests() == []


async def test_nulls_take_the_defaults(push: Push) -> None:
    """A client that writes every field sends null for what it never set: the defaults hold
    (SYNCHRONOUS, HIGH, not silent, not personal, not encrypted)."""
    app_id, _ = await push.app_with_devices()
    body = message(
        priority=None,
        activationId=None,
        attributes={"silent": None, "personal": None, "encrypted": None},
        body={"title": "Hello", "body": "World", "titleLocKey": None, "badge": None},
    )
    result = await push.send_ok(app_id, body, mode=None)  # type: ignore[arg-type]
    assert result["mode"] == "SYNCHRONOUS"
    assert result["ios"] == result["android"] == result["huawei"] == counts(sent=1)
    [apns] = push.apns_requests()
    assert apns.headers["apns-priority"] == "10" and apns.headers["apns-push-type"] == "alert"
    assert apns.body == {"aps": {"alert": {"title": "Hello", "body": "World"}}}

    no_attributes = await push.send_ok(app_id, message(attributes=None))
    assert no_attributes["ios"] == counts(sent=1)


# Modes and batches


async def test_asynchronous_send_queues_until_a_worker_runs(push: Push) -> None:
    app_id, devices = await push.app_with_devices()

    result = await push.send_ok(app_id, message(body=FULL_BODY), mode="ASYNCHRONOUS")

    rows = await push.rows()
    assert result == {
        "mode": "ASYNCHRONOUS",
        "ios": counts(pending=1),
        "android": counts(pending=1),
        "huawei": counts(pending=1),
        "messageIds": [row.id for row in rows],
    }
    assert [(row.status, row.attempts) for row in rows] == [(PENDING, 0)] * 3
    for row in rows:
        detail = await push.detail(row.id)
        assert detail["status"] == "PENDING" and detail["attempts"] == 0
        assert detail["body"] == FULL_BODY
    assert push.apns_requests() == push.fcm_requests() == push.hms_requests() == []

    assert await push.run_worker() == 3

    assert [(row.status, row.attempts) for row in await push.rows()] == [(SENT, 1)] * 3
    for device in devices.values():
        assert len(push.requests_for(device)) == 1
    # The queued message renders as the synchronous one does.
    [apns] = push.apns_requests()
    assert apns.body == FULL_APNS_PAYLOAD and apns.headers["apns-collapse-id"] == "payments"


async def test_batch_sums_counts(push: Push) -> None:
    app_id = await push.create_app()
    await push.register(app_id, "ios", user_id="alice")
    await push.register(app_id, "android", user_id="alice")
    await push.register(app_id, "ios", user_id="bob")
    await push.register(app_id, "huawei", user_id="bob")
    batch = [message("alice"), message("bob"), message("carol"), message("alice")]

    response = await push.batch(app_id, batch)
    assert response.status_code == 200, response.text
    assert response.json()["responseObject"] == {
        "mode": "SYNCHRONOUS",
        "ios": counts(sent=3),
        "android": counts(sent=2),
        "huawei": counts(sent=1),
    }
    assert len(push.apns_requests()) == 3

    queued = await push.batch(app_id, batch, mode="ASYNCHRONOUS")
    assert queued.status_code == 200, queued.text
    result = queued.json()["responseObject"]
    assert {name: result[name] for name in ("ios", "android", "huawei")} == {
        "ios": counts(pending=3),
        "android": counts(pending=2),
        "huawei": counts(pending=1),
    }
    assert len(result["messageIds"]) == 6
    assert [row.id for row in await push.rows() if row.status == PENDING] == result["messageIds"]


# Refusals


def _apns_body_of_size(size: int) -> Json:
    """A body whose APNs payload is exactly ``size`` bytes."""
    text = "x" * 4000
    empty = {"aps": {"alert": {"body": text}}, "pad": ""}
    padding = size - len(json.dumps(empty, separators=(",", ":")))
    assert padding > 0
    return {"body": text, "extras": {"pad": "y" * padding}}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "t", "collapseKey": "k" * 65}, "collapseKey"),
        # 22 characters, 66 bytes: the limit is in bytes.
        ({"title": "t", "collapseKey": "€" * 22}, "collapseKey"),
        ({"title": "t", "collapseKey": ""}, "collapseKey"),
        ({"title": "t", "extras": {"aps": {"alert": "x"}}}, "extras"),
        ({"title": "t", "validUntil": "2030-12-24T18:00:00"}, "validUntil"),
        ({"title": "t", "validUntil": "tomorrow"}, "validUntil"),
        ({"title": "t", "badge": -1}, "badge"),
    ],
    ids=[
        "collapse-key-65-bytes",
        "collapse-key-66-utf8-bytes",
        "collapse-key-empty",
        "extras-aps",
        "valid-until-without-zone",
        "valid-until-not-a-date",
        "negative-badge",
    ],
)
async def test_bad_bodies_are_refused(push: Push, body: Json, field: str) -> None:
    app_id, _ = await push.app_with_devices()
    before = await table_rows(push.database)

    for response in (
        await push.send(app_id, message(body=body)),
        await push.batch(app_id, [message(), message(body=body)]),
    ):
        error = error_of(response, 400, "ERROR_REQUEST")
        names = [violation["fieldName"] for violation in error["violations"]]
        assert any(name.endswith(f".{field}") for name in names), names

    assert await table_rows(push.database) == before
    assert push.apns_requests() == push.fcm_requests() == push.hms_requests() == []


async def test_collapse_key_of_64_bytes_is_accepted(push: Push) -> None:
    key = "€" * 21 + "k"
    wire = await send_to_all(push, message(body={"title": "t", "collapseKey": key}))
    assert wire.apns.headers["apns-collapse-id"].encode("latin-1") == key.encode()


async def test_batch_over_the_maximum_is_refused(push: Push) -> None:
    app_id, _ = await push.app_with_devices()
    limit = push.settings.max_batch_size

    response = await push.batch(app_id, [{"userId": "alice", "body": {}}] * (limit + 1))

    error = error_of(response, 400, "ERROR_REQUEST")
    assert [v["fieldName"] for v in error["violations"]] == ["requestObject.batch"]
    assert await push.rows() == []
    assert push.apns_requests() == []


async def test_unknown_application(push: Push) -> None:
    error_of(await push.send(987_654_321, message()), 404, "ERROR_NOT_FOUND")
    response = await push.client.post(
        BATCH,
        headers=push.sender,
        json={"requestObject": {"appId": 987_654_321, "batch": [message()]}},
    )
    error_of(response, 404, "ERROR_NOT_FOUND")
    missing = await push.client.get("/push/message/987654321/detail", headers=push.sender)
    error_of(missing, 404, "ERROR_NOT_FOUND")
    assert await push.rows() == []


async def test_apns_payload_over_4096_bytes_is_refused_before_storing(push: Push) -> None:
    app_id, _ = await push.app_with_devices()
    before = await table_rows(push.database)

    too_large = _apns_body_of_size(4097)
    single = error_of(
        await push.send(app_id, message(body=too_large)), 413, "ERROR_PAYLOAD_TOO_LARGE"
    )
    assert [v["fieldName"] for v in single["violations"]] == ["requestObject.message.body"]
    batch = await push.batch(app_id, [message(), message(body=too_large)])
    error = error_of(batch, 413, "ERROR_PAYLOAD_TOO_LARGE")
    assert [v["fieldName"] for v in error["violations"]] == ["requestObject.batch[1].body"]
    assert await table_rows(push.database) == before
    assert push.apns_requests() == push.fcm_requests() == push.hms_requests() == []

    # At the limit it goes out, and the provider takes it.
    result = await push.send_ok(app_id, message(body=_apns_body_of_size(4096)))
    assert result["ios"] == counts(sent=1)
    [apns] = push.apns_requests()
    assert apns.status == 200 and apns.headers["content-length"] == "4096"


@pytest.mark.parametrize(
    "body",
    [
        {"title": "t" * 10_000},
        {"body": "b" * 100_000},
        {"title": "t", "bodyLocArgs": ["a" * 5_000]},
    ],
    ids=["long-title", "long-body", "long-loc-arg"],
)
async def test_oversized_text_is_413_whoever_the_user_has(push: Push, body: Json) -> None:
    """Text has no length limit of its own: the payload limit answers, with or without an
    iOS device among the user's, or any device at all."""
    app_id = await push.create_app()
    await push.register(app_id, "android", user_id="bob")
    before = await table_rows(push.database)

    for user in ("alice", "bob"):
        response = await push.send(app_id, message(user, body=body))
        error_of(response, 413, "ERROR_PAYLOAD_TOO_LARGE")

    assert await table_rows(push.database) == before
    assert push.fcm_requests() == []


async def test_registrar_key_may_not_send(push: Push) -> None:
    app_id, _ = await push.app_with_devices()
    await push.send_ok(app_id, message(), mode="ASYNCHRONOUS")
    [row, *_] = await push.rows()
    before = await table_rows(push.database)

    error_of(await push.send(app_id, message(), headers=push.registrar), 403, "ERROR_FORBIDDEN")
    response = await push.client.post(
        BATCH,
        headers=push.registrar,
        json={"requestObject": {"appId": app_id, "batch": [message()]}},
    )
    error_of(response, 403, "ERROR_FORBIDDEN")
    detail = await push.client.get(f"/push/message/{row.id}/detail", headers=push.registrar)
    error_of(detail, 403, "ERROR_FORBIDDEN")

    assert await table_rows(push.database) == before
    assert push.apns_requests() == []
