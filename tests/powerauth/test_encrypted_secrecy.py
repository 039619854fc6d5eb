"""The clear text of an encrypted message reaches no provider, no log record and no answer.

Every logger is captured at DEBUG, the database's included (SQL statements with their
parameters), while encrypted messages take every path: synchronous, queued, batched, retried,
refused for a device without a key. The same message sent in clear at the end shows that the
search would have found it.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from pushserver.messages.schemas import FAILED, SENT
from tests.applications.test_credential_secrecy import every_log, record_texts
from tests.delivery.support import Json, Push
from tests.powerauth.test_encrypted_messages import (
    KEY_TRANSPORT,
    encrypted_message,
    key_transport_partial,
    register_with_key,
)

__all__ = ["every_log"]

# Each holds a space or a hyphen, so none can turn up by chance inside base64.
NEEDLES = {
    "title": "Wire to Mallory Secretly",
    "body": "one-time code 482-915-007",
    "loc arg": "Mallory-Recipient-Name",
    "extra": "P-SECRET-31337-PAY",
    "nested extra": "IBAN CZ65 0800 0000 1920 0014 5399",
}
BODY: Json = {
    "title": NEEDLES["title"],
    "body": NEEDLES["body"],
    "titleLocKey": "wire.title",
    "titleLocArgs": [NEEDLES["loc arg"]],
    "sound": "default",
    "extras": {"paymentId": NEEDLES["extra"], "account": {"iban": NEEDLES["nested extra"]}},
}


def texts_sent(push: Push) -> list[str]:
    requests = [
        *push.apns_requests(),
        *push.apns_requests(push.sandbox),
        *push.fcm_requests(),
        *push.hms_requests(),
    ]
    return [f"{r.path} {r.header_list} {json.dumps(r.body, ensure_ascii=False)}" for r in requests]


def log_texts(logs: pytest.LogCaptureFixture) -> list[str]:
    return [
        text.decode(errors="replace") for record in logs.records for text in record_texts(record)
    ]


def found(texts: list[str], needles: dict[str, str]) -> set[str]:
    return {name for name, needle in needles.items() for text in texts if needle in text}


async def test_no_clear_text_reaches_providers_logs_or_answers(
    push: Push, every_log: pytest.LogCaptureFixture
) -> None:
    app_id = await push.create_app()
    devices = [await register_with_key(push, app_id, p) for p in ("ios", "android", "huawei")]
    keyless = await push.register(app_id, "android")
    needles = NEEDLES | {
        "device key": base64.b64encode(key_transport_partial(KEY_TRANSPORT["ios"])).decode()
    }
    answers: list[httpx.Response] = []

    # Synchronous, with one provider failing once, so a retry goes through the worker.
    push.program(devices[0], "InternalServerError", times=1)
    answers.append(await push.send(app_id, encrypted_message(BODY)))
    await push.make_due()
    assert await push.run_worker() == 1
    # Queued, and batched.
    answers.append(await push.send(app_id, encrypted_message(BODY), mode="ASYNCHRONOUS"))
    answers.append(await push.batch(app_id, [encrypted_message(BODY)] * 2, mode="ASYNCHRONOUS"))
    assert await push.run_worker() == 12
    rows = await push.rows()
    for row in rows:
        answers.append(await push.client.get(f"/push/message/{row.id}/detail", headers=push.sender))

    assert all(answer.status_code == 200 for answer in answers)
    assert (
        sorted(row.status for row in rows if row.device_registration_id == keyless.id)
        == [FAILED] * 4
    )
    assert [row.status for row in rows if row.device_registration_id != keyless.id] == [SENT] * 12
    assert len(texts_sent(push)) == 13
    # The capture saw the server and the database's statements, down to DEBUG.
    assert any(record.name.startswith("pushserver.") for record in every_log.records)
    assert any(record.name.startswith("sqlalchemy.engine") for record in every_log.records)
    assert found(texts_sent(push), needles) == set()
    assert found(log_texts(every_log), needles) == set()
    assert found([answer.text for answer in answers], needles) == set()

    # The same message in clear is found at once, by the same search.
    await push.send(app_id, {"userId": "alice", "body": BODY})
    assert found(texts_sent(push), NEEDLES) == set(NEEDLES)
    assert found(log_texts(every_log), NEEDLES)
