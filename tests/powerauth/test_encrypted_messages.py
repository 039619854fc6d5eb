"""End-to-end encrypted messages, opened the way a device opens them.

The device side is written here from providers.md alone (the ``cryptography`` package's HMAC
and AES, not the server's module): KEY_TRANSPORT_PARTIAL is derived from a known KEY_TRANSPORT
and SESSION_INDEX, registered, and what the fake providers received is opened with it.
"""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac, padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from pushserver.messages.schemas import FAILED, PENDING, SENT
from pushserver.powerauth import e2ee
from pushserver.settings import Settings
from tests.conftest import table_rows
from tests.delivery.support import (
    SEND,
    TOKEN_FACTORIES,
    Device,
    Json,
    Push,
    counts,
    error_of,
)
from tests.fakes.runner import RecordedRequest
from tests.powerauth.conftest import serving

# Known device secrets, one KEY_TRANSPORT per platform's device.
KEY_TRANSPORT = {
    "ios": bytes.fromhex("0f1e2d3c4b5a69788796a5b4c3d2e1f0"),
    "android": bytes.fromhex("00112233445566778899aabbccddeeff"),
    "huawei": bytes.fromhex("a0a1a2a3a4a5a6a7a8a9aaabacadaeaf"),
}
SESSION_INDEX = bytes.fromhex("5e55101e5e55101e5e55101e5e55101e")

SECRET_BODY: Json = {
    "title": "Transfer of 9876 EUR to Mallory",
    "body": "Confirm with code 482915 before 18:00",
    "titleLocKey": "transfer.title",
    "titleLocArgs": ["9876 EUR", "Mallory"],
    "bodyLocKey": "transfer.body",
    "bodyLocArgs": ["482915"],
    "badge": 2,
    "sound": "default",
    "category": "payments",
    "collapseKey": "transfer-77",
    "extras": {"paymentId": "P-SECRET-31337", "amount": {"value": 9876, "currency": "EUR"}},
}
GENERIC = {"title": "New message", "body": "Open the app to read it"}
ENCRYPTED = {"encrypted": True}


# The device's side of the scheme


def kdf_internal(key: bytes, index: bytes) -> bytes:
    mac = hmac.HMAC(index, hashes.SHA256())
    mac.update(key)
    digest = mac.finalize()
    return bytes(digest[i] ^ digest[i + 16] for i in range(16))


def key_transport_partial(key_transport: bytes, session_index: bytes = SESSION_INDEX) -> bytes:
    return kdf_internal(key_transport, session_index)


def b64d(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def device_open(sealed: Json, key_transport: bytes) -> bytes:
    """The plaintext, after the MAC over encryptedData checks out (InvalidSignature if not)."""
    partial = key_transport_partial(key_transport, b64d(sealed["sessionIndex"]))
    encrypted_data = b64d(sealed["encryptedData"])

    mac = hmac.HMAC(kdf_internal(partial, b64d(sealed["macIndex"])), hashes.SHA256())
    mac.update(encrypted_data)
    mac.verify(b64d(sealed["mac"]))

    key_enc = kdf_internal(partial, b64d(sealed["adHocIndex"]))
    decryptor = Cipher(algorithms.AES(key_enc), modes.CBC(b64d(sealed["nonce"]))).decryptor()
    padded = decryptor.update(encrypted_data) + decryptor.finalize()
    unpadder = padding.PKCS7(128).unpadder()
    return unpadder.update(padded) + unpadder.finalize()


def tampered(sealed: Json, field: str) -> Json:
    raw = bytearray(b64d(sealed[field]))
    raw[len(raw) // 2] ^= 0x01
    return sealed | {field: base64.b64encode(bytes(raw)).decode()}


# What the providers received


def sealed_in(request: RecordedRequest, platform: str) -> Json:
    """The ``encrypted`` extra, after checking it is the only one and the text is generic."""
    body = request.body
    if platform == "ios":
        assert set(body) == {"aps", "encrypted"}
        if "alert" in body["aps"]:
            assert body["aps"]["alert"] == GENERIC
        value: Json = body["encrypted"]
        return value
    message = body["message"]
    notification = message["android"].get("notification")
    if notification is not None:
        assert {notification["title"], notification["body"]} == set(GENERIC.values())
        assert not {"title_loc_key", "title_loc_args", "body_loc_key", "body_loc_args"} & set(
            notification
        )
    if platform == "android":
        assert set(message["data"]) == {"encrypted"}
        opened: Json = json.loads(message["data"]["encrypted"])
        return opened
    data = json.loads(message["data"])
    assert set(data) == {"encrypted"}
    nested: Json = data["encrypted"]
    return nested


def received(push: Push, device: Device) -> list[Json]:
    return [sealed_in(request, device.platform) for request in push.requests_for(device)]


# Setting up


async def register_with_key(
    push: Push, app_id: int, platform: str, *, activation_id: str | None = None, **fields: Any
) -> Device:
    """A device of alice's that gave the server the partial key of its platform's KEY_TRANSPORT."""
    activation_id = activation_id or str(uuid.uuid4())
    token = fields.pop("token", None) or TOKEN_FACTORIES[platform]()
    payload: Json = {
        "appId": app_id,
        "token": token,
        "platform": platform,
        "activationId": activation_id,
        "userId": "alice",
        "activationStatus": "ACTIVE",
        "encryptionKey": base64.b64encode(key_transport_partial(KEY_TRANSPORT[platform])).decode(),
        "encryptionKeyIndex": base64.b64encode(SESSION_INDEX).decode(),
    } | fields
    response = await push.client.post(
        "/push/device/create", headers=push.registrar, json={"requestObject": payload}
    )
    assert response.status_code == 200, response.text
    [row] = [r for r in await device_rows(push) if r[1] == activation_id]
    return Device(row[0], app_id, platform, token, activation_id, "alice")


async def device_rows(push: Push) -> list[tuple[int, str]]:
    rows = (await table_rows(push.database))["push_device"]
    return [(row["id"], row["activation_id"]) for row in rows]


async def keyed_devices(push: Push) -> tuple[int, dict[str, Device]]:
    app_id = await push.create_app()
    devices = {p: await register_with_key(push, app_id, p) for p in ("ios", "android", "huawei")}
    return app_id, devices


def encrypted_message(body: Json = SECRET_BODY, **fields: Any) -> Json:
    return {"userId": "alice", "attributes": ENCRYPTED, "body": body} | fields


ALL_SENT = {"mode": "SYNCHRONOUS", "ios": counts(1), "android": counts(1), "huawei": counts(1)}


# Acceptance 2: what arrives opens with the device's key, and only after the MAC checks out


async def test_each_device_opens_its_copy_with_its_own_key(push: Push) -> None:
    app_id, devices = await keyed_devices(push)

    assert await push.send_ok(app_id, encrypted_message()) == ALL_SENT

    copies: dict[str, Json] = {}
    for platform, device in devices.items():
        [sealed] = received(push, device)
        assert set(sealed) == {
            "activationId",
            "sessionIndex",
            "adHocIndex",
            "macIndex",
            "nonce",
            "mac",
            "encryptedData",
        }
        assert sealed["activationId"] == device.activation_id
        assert b64d(sealed["sessionIndex"]) == SESSION_INDEX
        randoms = [b64d(sealed[name]) for name in ("adHocIndex", "macIndex", "nonce")]
        assert all(len(value) == 16 for value in randoms)
        assert len({SESSION_INDEX, *randoms}) == 4
        assert len(b64d(sealed["mac"])) == 32

        plaintext = device_open(sealed, KEY_TRANSPORT[platform])
        assert json.loads(plaintext) == SECRET_BODY
        copies[platform] = sealed

    # Sealed per device: no two copies share their indexes or their ciphertext.
    assert len({sealed["encryptedData"] for sealed in copies.values()}) == 3
    assert len({sealed["adHocIndex"] for sealed in copies.values()}) == 3


@pytest.mark.parametrize("field", ["mac", "encryptedData", "macIndex", "sessionIndex"])
async def test_a_tampered_copy_fails_the_mac(push: Push, field: str) -> None:
    app_id, devices = await keyed_devices(push)
    await push.send_ok(app_id, encrypted_message())

    for platform, device in devices.items():
        [sealed] = received(push, device)
        device_open(sealed, KEY_TRANSPORT[platform])
        with pytest.raises(InvalidSignature):
            device_open(tampered(sealed, field), KEY_TRANSPORT[platform])


async def test_another_devices_key_fails_the_mac(push: Push) -> None:
    app_id, devices = await keyed_devices(push)
    await push.send_ok(app_id, encrypted_message())

    [sealed] = received(push, devices["ios"])
    with pytest.raises(InvalidSignature):
        device_open(sealed, KEY_TRANSPORT["android"])


async def test_the_visible_text_is_generic_and_delivery_fields_stay(push: Push) -> None:
    app_id, devices = await keyed_devices(push)
    await push.send_ok(app_id, encrypted_message())

    [apns] = push.requests_for(devices["ios"])
    assert apns.body["aps"] == {
        "alert": GENERIC,
        "badge": 2,
        "sound": "default",
        "category": "payments",
    }
    assert apns.headers["apns-collapse-id"] == "transfer-77"
    assert apns.headers["apns-push-type"] == "alert"
    [fcm] = push.requests_for(devices["android"])
    assert fcm.body["message"]["android"]["notification"] == GENERIC | {
        "sound": "default",
        "tag": "payments",
        "notification_count": 2,
    }
    [hms] = push.requests_for(devices["huawei"])
    assert hms.body["message"]["android"]["notification"] == GENERIC | {
        "sound": "default",
        "tag": "payments",
        "click_action": {"type": 3},
        "badge": {"set_num": 2},
    }


async def test_the_generic_text_is_a_setting(push: Push, settings: Settings) -> None:
    app_id, devices = await keyed_devices(push)
    changes = {"encrypted_message_title": "Bank", "encrypted_message_body": "Something new"}

    async with serving(settings, **changes) as client:
        payload = {"appId": app_id, "message": encrypted_message()}
        response = await client.post(SEND, json={"requestObject": payload}, headers=push.sender)

    assert response.status_code == 200, response.text
    [apns] = push.requests_for(devices["ios"])
    assert apns.body["aps"]["alert"] == {"title": "Bank", "body": "Something new"}
    [fcm] = push.requests_for(devices["android"])
    assert fcm.body["message"]["android"]["notification"]["body"] == "Something new"


async def test_a_silent_encrypted_message_carries_only_the_sealed_body(push: Push) -> None:
    app_id, devices = await keyed_devices(push)

    message = encrypted_message(attributes=ENCRYPTED | {"silent": True})
    assert await push.send_ok(app_id, message) == ALL_SENT

    [apns] = push.requests_for(devices["ios"])
    assert apns.body["aps"] == {"content-available": 1}
    assert apns.headers["apns-push-type"] == "background"
    [fcm] = push.requests_for(devices["android"])
    assert "notification" not in fcm.body["message"]["android"]
    [hms] = push.requests_for(devices["huawei"])
    assert "notification" not in hms.body["message"]["android"]
    for platform, device in devices.items():
        [sealed] = received(push, device)
        assert json.loads(device_open(sealed, KEY_TRANSPORT[platform])) == SECRET_BODY


async def test_a_queued_encrypted_message_is_sealed_by_the_worker(push: Push) -> None:
    app_id, devices = await keyed_devices(push)

    queued = await push.send_ok(app_id, encrypted_message(), mode="ASYNCHRONOUS")
    assert len(queued["messageIds"]) == 3
    assert push.apns_requests() == push.fcm_requests() == push.hms_requests() == []

    assert await push.run_worker() == 3

    assert [row.status for row in await push.rows()] == [SENT] * 3
    for platform, device in devices.items():
        [sealed] = received(push, device)
        assert json.loads(device_open(sealed, KEY_TRANSPORT[platform])) == SECRET_BODY


# Devices that must get nothing


async def test_a_device_without_a_key_gets_nothing(push: Push) -> None:
    app_id = await push.create_app()
    keyed = await register_with_key(push, app_id, "ios")
    keyless = await push.register(app_id, "android")

    result = await push.send_ok(app_id, encrypted_message())

    assert result == {
        "mode": "SYNCHRONOUS",
        "ios": counts(sent=1),
        "android": counts(failed=1),
        "huawei": counts(),
    }
    assert push.fcm_requests() == []
    row = await push.row_for(keyless)
    assert row.status == FAILED
    assert row.last_error is not None
    assert "no end-to-end encryption key" in row.last_error
    assert "nothing was sent" in row.last_error
    detail = await push.detail(row.id)
    assert detail["status"] == "FAILED" and "encryption key" in detail["lastError"]
    assert (await push.row_for(keyed)).status == SENT


async def test_a_device_moved_to_another_activation_gets_nothing(push: Push) -> None:
    """The new activation's key must not open a message queued for the old one."""
    app_id = await push.create_app()
    device = await register_with_key(push, app_id, "ios")
    await push.send_ok(app_id, encrypted_message(), mode="ASYNCHRONOUS")

    moved = await register_with_key(push, app_id, "ios", token=device.token)
    assert moved.id == device.id and moved.activation_id != device.activation_id
    await push.run_worker()

    assert push.apns_requests() == []
    [row] = await push.rows()
    assert row.status == FAILED
    assert row.last_error is not None and "no end-to-end encryption key" in row.last_error


# What the server keeps and shows


async def test_the_body_rests_sealed_and_the_detail_leaves_it_out(push: Push) -> None:
    app_id = await push.create_app()
    await register_with_key(push, app_id, "ios")

    queued = await push.send_ok(app_id, encrypted_message(), mode="ASYNCHRONOUS")
    plain = await push.send_ok(app_id, {"userId": "alice", "body": SECRET_BODY}, "ASYNCHRONOUS")

    [encrypted_id], [plain_id] = queued["messageIds"], plain["messageIds"]
    rows = {row.id: row for row in await push.rows()}
    assert rows[encrypted_id].status == rows[plain_id].status == PENDING
    assert "Mallory" not in rows[encrypted_id].message_body
    assert "Mallory" in rows[plain_id].message_body
    encrypted_detail = await push.detail(encrypted_id)
    assert encrypted_detail["encrypted"] is True
    assert "body" not in encrypted_detail
    assert (await push.detail(plain_id))["body"] == SECRET_BODY


async def test_a_message_too_large_once_sealed_is_refused(push: Push) -> None:
    app_id = await push.create_app()
    await register_with_key(push, app_id, "ios")
    body = {"title": "Statement", "body": "x" * 3300}
    before = await table_rows(push.database)

    error = error_of(
        await push.send(app_id, encrypted_message(body)), 413, "ERROR_PAYLOAD_TOO_LARGE"
    )

    assert "APNs payload" in error["message"]
    assert await table_rows(push.database) == before
    # The same text in clear fits.
    assert (await push.send_ok(app_id, {"userId": "alice", "body": body}))["ios"] == counts(1)


# The server's sealing itself


def test_indexes_equal_to_each_other_or_the_session_index_are_drawn_again() -> None:
    session_index = bytes(range(16))
    other = bytes(range(1, 17))
    rounds = [
        (session_index, other, bytes(16)),  # AD_HOC_INDEX equal to SESSION_INDEX
        (other, other, bytes(16)),  # AD_HOC_INDEX equal to MAC_INDEX
        (other, bytes(16), bytes(16)),  # MAC_INDEX equal to NONCE
        (other, bytes(16), b"\x07" * 16),
    ]
    draws = iter([value for values in rounds for value in values])
    key_transport = bytes(range(100, 116))
    partial = key_transport_partial(key_transport, session_index)

    sealed = e2ee.seal(partial, session_index, "a1", b'{"body":"hi"}', lambda n: next(draws))

    assert (b64d(sealed["adHocIndex"]), b64d(sealed["macIndex"]), b64d(sealed["nonce"])) == (
        other,
        bytes(16),
        b"\x07" * 16,
    )
    assert next(draws, None) is None
    assert device_open(sealed, key_transport) == b'{"body":"hi"}'


def test_the_servers_kdf_matches_the_devices() -> None:
    for key, index in [(bytes(16), bytes(16)), (KEY_TRANSPORT["ios"], SESSION_INDEX)]:
        assert e2ee.kdf_internal(key, index) == kdf_internal(key, index)
