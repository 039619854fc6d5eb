"""Registration and the status callback against a fake PowerAuth Server on loopback."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select

from pushserver.db.engine import Database
from pushserver.db.models import PushDevice
from pushserver.security.apikeys import Role
from pushserver.settings import Settings
from tests.applications.test_credential_secrecy import every_log, record_texts
from tests.conftest import auth, table_rows
from tests.delivery.support import Push, counts, message
from tests.powerauth.conftest import (
    PASSWORD,
    TIMEOUT_S,
    closed_port_url,
    powerauth_settings,
    serving,
)
from tests.powerauth.fake import STATUS_PATH, Answer, PowerAuthFake, error_answer

CREATE = "/push/device/create"
CREATE_MULTI = "/push/device/create/multi"
STATUS = "/push/device/status/update"

APP = 1
ALICE = "0b5c6b8e-7d2e-4c55-9d43-2c3f6d1a9e77"
BOB = "5d1f0f3a-2b9e-4a8e-8c1b-6f2a7e3d9c10"
CAROL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
TOKEN = "token-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OTHER_TOKEN = "token-0002-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

Headers = dict[str, str]
Json = dict[str, Any]

__all__ = ["every_log"]

STATUSES_BUT_REMOVED = ["CREATED", "PENDING_COMMIT", "ACTIVE", "BLOCKED"]

# PowerAuth Server answers the server must not act on, each with words its message must carry.
FAILURES: dict[str, tuple[Answer, str]] = {
    "HTTP 500 with an error": (
        error_answer(500, "ERROR_GENERIC", "database is down"),
        "HTTP 500, ERROR_GENERIC: database is down",
    ),
    "HTTP 400 with an error": (
        error_answer(400, "ERROR_ACTIVATION_NOT_FOUND", "no such activation"),
        "HTTP 400, ERROR_ACTIVATION_NOT_FOUND",
    ),
    "HTTP 200 with status ERROR": (
        error_answer(200, "ERROR_GENERIC", "internal error"),
        "HTTP 200, ERROR_GENERIC",
    ),
    "HTTP 503 without a body": (Answer(503, b""), "HTTP 503"),
    "not JSON": (Answer(200, b"<html>proxy error</html>"), "HTTP 200"),
    "no responseObject": (Answer(200, b'{"status": "OK"}'), "malformed answer"),
    "an unknown status": (
        Answer(
            200,
            json.dumps(
                {
                    "status": "OK",
                    "responseObject": {"activationStatus": "FROZEN", "userId": "alice"},
                }
            ).encode(),
        ),
        "activationStatus 'FROZEN'",
    ),
    "no user for an active activation": (
        Answer(
            200,
            json.dumps(
                {"status": "OK", "responseObject": {"activationStatus": "ACTIVE", "userId": None}}
            ).encode(),
        ),
        "no userId",
    ),
}


# Requests


def envelope(payload: Any) -> Json:
    return {"requestObject": payload}


def registration(activation_id: str = ALICE, token: str = TOKEN, **fields: Any) -> Json:
    """A create payload that leaves the user and status to PowerAuth Server."""
    payload: Json = {
        "appId": APP,
        "token": token,
        "platform": "android",
        "activationId": activation_id,
    }
    return payload | fields


def multi_registration(activation_ids: list[str], **fields: Any) -> Json:
    payload = registration(**fields)
    del payload["activationId"]
    return payload | {"activationIds": activation_ids}


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK"}


def assert_error(response: httpx.Response, status: int, code: str) -> Json:
    assert response.status_code == status, response.text
    document = response.json()
    assert document["status"] == "ERROR"
    error: Json = document["responseObject"]
    assert error["code"] == code
    return error


def assert_powerauth_failed(response: httpx.Response, *words: str) -> None:
    error = assert_error(response, 502, "ERROR_PA_SERVER_COMM")
    assert "PowerAuth Server" in error["message"]
    for word in words:
        assert word in error["message"], error["message"]


# Rows


async def devices(database: Database) -> dict[str, tuple[str | None, bool, str]]:
    """Each activation's (user, is_active, token)."""
    async with database.transaction() as session:
        rows = (await session.scalars(select(PushDevice))).all()
    return {row.activation_id: (row.user_id, row.is_active, row.push_token) for row in rows}


# Fixtures


@pytest.fixture
def registrar(keys: dict[Role, str]) -> Headers:
    return auth(keys[Role.REGISTRAR])


@pytest.fixture
async def app_created(pa_client: httpx.AsyncClient, admin: Headers) -> None:
    payload = envelope({"appId": APP})
    response = await pa_client.post("/admin/app/create", json=payload, headers=admin)
    assert response.status_code == 200, response.text


@pytest.fixture
async def registered(
    app_created: None, pa_client: httpx.AsyncClient, registrar: Headers, powerauth: PowerAuthFake
) -> None:
    """ALICE's active device, so that a failed request has a row it could have changed."""
    powerauth.activation(ALICE, "ACTIVE", "alice")
    assert_ok(await pa_client.post(CREATE, json=envelope(registration()), headers=registrar))
    powerauth.reset()


# Registration


@pytest.mark.parametrize("status", STATUSES_BUT_REMOVED)
async def test_registration_takes_user_and_status_from_powerauth(
    app_created: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
    status: str,
) -> None:
    powerauth.activation(ALICE, status, "alice@bank")

    assert_ok(await pa_client.post(CREATE, json=envelope(registration()), headers=registrar))

    assert await devices(database) == {ALICE: ("alice@bank", status == "ACTIVE", TOKEN)}
    [call] = powerauth.calls()
    assert call.path == STATUS_PATH
    assert call.body == {"requestObject": {"activationId": ALICE}}
    assert call.headers["authorization"] == powerauth.credentials
    assert call.headers["content-type"].startswith("application/json")


@pytest.mark.parametrize(
    "given",
    [{"userId": "mallory"}, {"activationStatus": "ACTIVE"}],
    ids=["userId only", "activationStatus only"],
)
async def test_registration_with_half_of_the_activation_asks_powerauth(
    app_created: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
    given: Json,
) -> None:
    powerauth.activation(ALICE, "BLOCKED", "alice")

    response = await pa_client.post(CREATE, json=envelope(registration(**given)), headers=registrar)

    assert_ok(response)
    assert await devices(database) == {ALICE: ("alice", False, TOKEN)}
    assert powerauth.asked() == [ALICE]


async def test_registration_with_user_and_status_is_trusted_without_asking(
    app_created: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    powerauth.activation(ALICE, "BLOCKED", "somebody-else")
    payload = registration(userId="alice", activationStatus="ACTIVE")

    assert_ok(await pa_client.post(CREATE, json=envelope(payload), headers=registrar))

    assert await devices(database) == {ALICE: ("alice", True, TOKEN)}
    assert powerauth.calls() == []


@pytest.mark.parametrize("known", [True, False], ids=["REMOVED", "unknown to PowerAuth"])
async def test_registration_of_a_removed_activation_is_refused(
    registered: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
    known: bool,
) -> None:
    if known:
        powerauth.activation(BOB, "REMOVED", "bob")
    before = await table_rows(database)

    response = await pa_client.post(
        CREATE, json=envelope(registration(BOB, OTHER_TOKEN)), headers=registrar
    )

    error = assert_error(response, 400, "ERROR_REQUEST")
    assert BOB in error["message"] and "REMOVED" in error["message"]
    assert error["violations"] == [
        {
            "fieldName": "requestObject.activationId",
            "invalidValue": BOB,
            "hint": "is REMOVED at PowerAuth Server",
        }
    ]
    assert await table_rows(database) == before


async def test_multi_registration_asks_for_each_activation(
    app_created: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    powerauth.activation(ALICE, "ACTIVE", "alice")
    powerauth.activation(BOB, "BLOCKED", "bob")
    powerauth.activation(CAROL, "PENDING_COMMIT", "carol")

    payload = multi_registration([ALICE, BOB, CAROL, BOB])
    assert_ok(await pa_client.post(CREATE_MULTI, json=envelope(payload), headers=registrar))

    assert await devices(database) == {
        ALICE: ("alice", True, TOKEN),
        BOB: ("bob", False, TOKEN),
        CAROL: ("carol", False, TOKEN),
    }
    assert sorted(powerauth.asked()) == sorted([ALICE, BOB, CAROL])


async def test_multi_registration_with_one_removed_activation_changes_nothing(
    registered: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    powerauth.activation(ALICE, "ACTIVE", "alice")
    powerauth.activation(CAROL, "ACTIVE", "carol")
    before = await table_rows(database)

    payload = multi_registration([ALICE, BOB, CAROL], token=OTHER_TOKEN)
    response = await pa_client.post(CREATE_MULTI, json=envelope(payload), headers=registrar)

    error = assert_error(response, 400, "ERROR_REQUEST")
    assert [v["fieldName"] for v in error["violations"]] == ["requestObject.activationIds[1]"]
    assert await table_rows(database) == before


@pytest.mark.parametrize("failure", list(FAILURES))
async def test_registration_fails_when_powerauth_answers_an_error(
    registered: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
    failure: str,
) -> None:
    answer, words = FAILURES[failure]
    powerauth.answer(ALICE, answer)
    before = await table_rows(database)

    # The same activation on a new token: a success would change ALICE's row.
    response = await pa_client.post(
        CREATE, json=envelope(registration(token=OTHER_TOKEN)), headers=registrar
    )

    assert_powerauth_failed(response, words)
    assert await table_rows(database) == before


async def test_multi_registration_fails_when_powerauth_fails_for_one_activation(
    registered: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    powerauth.activation(ALICE, "ACTIVE", "alice")
    powerauth.answer(BOB, error_answer(500, "ERROR_GENERIC", "busy"))
    before = await table_rows(database)

    payload = multi_registration([ALICE, BOB], token=OTHER_TOKEN)
    response = await pa_client.post(CREATE_MULTI, json=envelope(payload), headers=registrar)

    assert_powerauth_failed(response, "HTTP 500")
    assert await table_rows(database) == before


async def test_registration_fails_when_powerauth_refuses_the_credentials(
    registered: None,
    settings: Settings,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    powerauth.activation(ALICE, "ACTIVE", "alice")
    before = await table_rows(database)

    async with serving(settings, **powerauth_settings(powerauth.url, "wrong")) as client:
        payload = envelope(registration(token=OTHER_TOKEN))
        response = await client.post(CREATE, json=payload, headers=registrar)

    assert_powerauth_failed(response, "HTTP 401")
    assert await table_rows(database) == before
    [call] = powerauth.calls()
    assert call.headers["authorization"] != powerauth.credentials


async def test_registration_fails_when_powerauth_is_down(
    registered: None, settings: Settings, registrar: Headers, database: Database
) -> None:
    before = await table_rows(database)

    async with serving(settings, **powerauth_settings(closed_port_url())) as client:
        started = time.monotonic()
        payload = envelope(registration(token=OTHER_TOKEN))
        response = await client.post(CREATE, json=payload, headers=registrar)
        elapsed_s = time.monotonic() - started

    assert_powerauth_failed(response, "could not be reached")
    assert elapsed_s < TIMEOUT_S
    assert await table_rows(database) == before


async def test_registration_fails_when_powerauth_is_slower_than_the_timeout(
    registered: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    powerauth.activation(ALICE, "ACTIVE", "alice")
    powerauth.slow(TIMEOUT_S * 4)
    before = await table_rows(database)

    started = time.monotonic()
    response = await pa_client.post(
        CREATE, json=envelope(registration(token=OTHER_TOKEN)), headers=registrar
    )
    elapsed_s = time.monotonic() - started

    assert_powerauth_failed(response, f"did not answer within {TIMEOUT_S:g} s")
    assert TIMEOUT_S <= elapsed_s < TIMEOUT_S * 3
    assert await table_rows(database) == before


async def test_registration_holds_no_lock_while_powerauth_answers(
    app_created: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    """A registration waiting for PowerAuth Server does not block one for the same token."""
    powerauth.activation(ALICE, "ACTIVE", "alice")
    powerauth.slow(TIMEOUT_S * 0.6)
    waiting = asyncio.create_task(
        pa_client.post(CREATE, json=envelope(registration()), headers=registrar)
    )
    while not powerauth.calls():
        await asyncio.sleep(0.01)

    started = time.monotonic()
    trusted = registration(BOB, userId="bob", activationStatus="ACTIVE")
    assert_ok(await pa_client.post(CREATE, json=envelope(trusted), headers=registrar))
    assert time.monotonic() - started < TIMEOUT_S * 0.3
    assert not waiting.done()

    assert_ok(await waiting)
    # The token now belongs to the activation registered last.
    assert await devices(database) == {ALICE: ("alice", True, TOKEN)}


async def test_no_log_record_holds_the_powerauth_password(
    app_created: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    every_log: pytest.LogCaptureFixture,
) -> None:
    powerauth.activation(ALICE, "ACTIVE", "alice")
    assert_ok(await pa_client.post(CREATE, json=envelope(registration()), headers=registrar))
    powerauth.answer(ALICE, error_answer(500, "ERROR_GENERIC", "busy"))
    assert_powerauth_failed(
        await pa_client.post(STATUS, json={"activationId": ALICE}, headers=registrar)
    )

    texts = [text for record in every_log.records for text in record_texts(record)]
    assert any(b"ERROR_PA_SERVER_COMM" in text for text in texts)
    credentials = powerauth.credentials.removeprefix("Basic ").encode()
    assert [text for text in texts if PASSWORD.encode() in text or credentials in text] == []


# The status callback


@pytest.mark.parametrize("status", [*STATUSES_BUT_REMOVED, "REMOVED"])
async def test_callback_without_status_asks_powerauth(
    registered: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
    status: str,
) -> None:
    powerauth.activation(ALICE, status, "alice")

    assert_ok(await pa_client.post(STATUS, json={"activationId": ALICE}, headers=registrar))

    assert await devices(database) == {ALICE: ("alice", status == "ACTIVE", TOKEN)}
    assert powerauth.asked() == [ALICE]


async def test_callback_with_status_does_not_ask_powerauth(
    registered: None,
    pa_client: httpx.AsyncClient,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
) -> None:
    powerauth.activation(ALICE, "ACTIVE", "alice")
    body = {"activationId": ALICE, "activationStatus": "BLOCKED"}

    assert_ok(await pa_client.put(STATUS, json=body, headers=registrar))

    assert await devices(database) == {ALICE: ("alice", False, TOKEN)}
    assert powerauth.calls() == []


async def test_callback_without_status_and_without_powerauth_is_refused(
    registered: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    before = await table_rows(database)

    response = await client.post(STATUS, json={"activationId": ALICE}, headers=registrar)

    error = assert_error(response, 400, "ERROR_REQUEST")
    assert [v["fieldName"] for v in error["violations"]] == ["activationStatus"]
    assert await table_rows(database) == before


@pytest.mark.parametrize("failure", ["HTTP 500 with an error", "not JSON", "slow", "down"])
async def test_callback_changes_nothing_when_powerauth_fails(
    registered: None,
    pa_client: httpx.AsyncClient,
    settings: Settings,
    registrar: Headers,
    powerauth: PowerAuthFake,
    database: Database,
    failure: str,
) -> None:
    before = await table_rows(database)
    body = {"activationId": ALICE}

    if failure == "down":
        async with serving(settings, **powerauth_settings(closed_port_url())) as client:
            response = await client.post(STATUS, json=body, headers=registrar)
    else:
        if failure == "slow":
            powerauth.activation(ALICE, "BLOCKED", "alice")
            powerauth.slow(TIMEOUT_S * 4)
        else:
            powerauth.answer(ALICE, FAILURES[failure][0])
        response = await pa_client.post(STATUS, json=body, headers=registrar)

    assert_powerauth_failed(response)
    assert await table_rows(database) == before


# Personal messages follow the callback


async def test_personal_messages_follow_the_status_powerauth_reports(
    push: Push, pa_client: httpx.AsyncClient, powerauth: PowerAuthFake
) -> None:
    app_id = await push.create_app()
    powerauth.activation(ALICE, "ACTIVE", "alice")
    payload = registration(appId=app_id, token="fcm-registration-token-pa-0001")
    assert_ok(await pa_client.post(CREATE, json=envelope(payload), headers=push.registrar))
    personal = message(attributes={"personal": True})
    nothing = {"mode": "SYNCHRONOUS", "ios": counts(), "android": counts(), "huawei": counts()}
    one_sent = nothing | {"android": counts(sent=1)}

    assert await push.send_ok(app_id, personal) == one_sent

    powerauth.activation(ALICE, "BLOCKED", "alice")
    assert_ok(await pa_client.post(STATUS, json={"activationId": ALICE}, headers=push.registrar))
    assert await push.send_ok(app_id, personal) == nothing
    # A message that is not personal still reaches the blocked activation's device.
    assert await push.send_ok(app_id, message()) == one_sent

    powerauth.activation(ALICE, "ACTIVE", "alice")
    assert_ok(await pa_client.post(STATUS, json={"activationId": ALICE}, headers=push.registrar))
    assert await push.send_ok(app_id, personal) == one_sent
    assert len(push.fcm_requests()) == 3


# Settings


def test_powerauth_url_setting() -> None:
    def url(value: str) -> str | None:
        return Settings(powerauth_url=value, _env_file=None).powerauth_url

    assert Settings(_env_file=None).powerauth_url is None
    assert url("  ") is None
    assert url("https://pa.example/powerauth-java-server/") == (
        "https://pa.example/powerauth-java-server"
    )
    with pytest.raises(ValidationError, match="http:// or https://"):
        url("pa.example:8080")
