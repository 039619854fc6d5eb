"""The device endpoints seen from a client: answers, envelopes, and the rows left in push_device."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import insert, select, text, update

from pushserver.api.context import AppContext
from pushserver.db.engine import Database
from pushserver.db.models import PushDevice
from pushserver.devices.service import key_context
from pushserver.security.apikeys import Role
from tests.conftest import auth, b64, table_rows

CREATE = "/push/device/create"
CREATE_MULTI = "/push/device/create/multi"
STATUS = "/push/device/status/update"
DELETE = "/push/device/delete"

APP = 1
OTHER_APP = 2
UNKNOWN_APP = 999

ALICE = "0b5c6b8e-7d2e-4c55-9d43-2c3f6d1a9e77"
BOB = "5d1f0f3a-2b9e-4a8e-8c1b-6f2a7e3d9c10"
CAROL = "9e8d7c6b-5a4f-4e3d-8c2b-1a0f9e8d7c6b"
TOKEN = "token-0001-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
OTHER_TOKEN = "token-0002-bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

KEY = b64(bytes(range(16)))
KEY_INDEX = b64(bytes(range(16, 32)))

Headers = dict[str, str]
Json = dict[str, Any]


# Request bodies


def registration(**fields: Any) -> Json:
    """A valid create payload for ALICE on APP; keyword arguments override its fields."""
    payload: Json = {
        "appId": APP,
        "token": TOKEN,
        "platform": "android",
        "activationId": ALICE,
        "userId": "alice",
        "activationStatus": "ACTIVE",
    }
    return payload | fields


def multi_registration(activation_ids: list[str], **fields: Any) -> Json:
    payload = without(registration(**fields), "activationId")
    return payload | {"activationIds": activation_ids}


def without(payload: Json, *names: str) -> Json:
    return {name: value for name, value in payload.items() if name not in names}


def envelope(payload: Any) -> Json:
    return {"requestObject": payload}


def status_update(activation_id: str, status: str) -> Json:
    return {"activationId": activation_id, "activationStatus": status}


def removal(token: str = TOKEN, app_id: int = APP) -> Json:
    return {"appId": app_id, "token": token}


# Every endpoint and method, each with a request that, once authorised, changes push_device
# when the `registered` device is in place.
ENDPOINTS: list[tuple[str, str, Json]] = [
    ("POST", CREATE, envelope(registration(activationId=BOB, token=OTHER_TOKEN))),
    ("POST", CREATE_MULTI, envelope(multi_registration([BOB, CAROL], token=OTHER_TOKEN))),
    ("POST", STATUS, status_update(ALICE, "BLOCKED")),
    ("PUT", STATUS, status_update(ALICE, "BLOCKED")),
    ("POST", DELETE, envelope(removal())),
    ("DELETE", DELETE, envelope(removal())),
]
ENDPOINT_IDS = [f"{method} {path}" for method, path, _ in ENDPOINTS]
METHODS_AND_PATHS = [(method, path) for method, path, _ in ENDPOINTS]
ENVELOPED = [(method, path) for method, path in METHODS_AND_PATHS if path != STATUS]

# settings.max_body_bytes in the test settings
LIMIT_BYTES = 64 * 1024


# Reading answers and rows


def assert_ok(response: httpx.Response) -> None:
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "OK"}


def assert_error(response: httpx.Response, status: int, code: str) -> Json:
    """The error object of a refused request, after checking its envelope."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "ERROR"
    error: Json = body["responseObject"]
    assert error["code"] == code
    assert error["message"]
    return error


def violations(response: httpx.Response) -> dict[str, Json]:
    """The violations of a 400 answer, by field name."""
    error = assert_error(response, 400, "ERROR_REQUEST")
    found = {violation["fieldName"]: violation for violation in error["violations"]}
    assert all(violation["hint"] for violation in found.values())
    return found


async def devices(database: Database) -> list[PushDevice]:
    async with database.transaction() as session:
        query = select(PushDevice).order_by(PushDevice.app_id, PushDevice.activation_id)
        return list((await session.scalars(query)).all())


async def only_device(database: Database) -> PushDevice:
    rows = await devices(database)
    assert len(rows) == 1, bindings(rows)
    return rows[0]


def bindings(rows: list[PushDevice]) -> list[tuple[int, str, str]]:
    return [(row.app_id, row.activation_id, row.push_token) for row in rows]


async def refused(database: Database, request: Awaitable[httpx.Response]) -> httpx.Response:
    """Send a request that must be refused, and check that it changed no table."""
    before = await table_rows(database)
    response = await request
    assert response.status_code >= 400, response.text
    assert await table_rows(database) == before
    return response


async def create(client: httpx.AsyncClient, headers: Headers, **fields: Any) -> None:
    """Register through the API, as the setup of a test."""
    assert_ok(await client.post(CREATE, json=envelope(registration(**fields)), headers=headers))


# Fixtures


@pytest.fixture
def registrar(keys: dict[Role, str]) -> Headers:
    return auth(keys[Role.REGISTRAR])


@pytest.fixture
async def apps(client: httpx.AsyncClient, admin: Headers) -> None:
    for app_id in (APP, OTHER_APP):
        response = await client.post(
            "/admin/app/create", json=envelope({"appId": app_id}), headers=admin
        )
        assert response.status_code == 200, response.text


@pytest.fixture
async def registered(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> PushDevice:
    """ALICE's device on APP, so that refused requests have a row they could have changed."""
    assert_ok(await client.post(CREATE, json=envelope(registration()), headers=registrar))
    return await only_device(database)


@pytest.fixture
def server_context(app: FastAPI) -> AppContext:
    context: AppContext = app.state.context
    return context


# Registration


async def test_create_stores_the_device(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    started = datetime.now(UTC)

    response = await client.post(CREATE, json=envelope(registration()), headers=registrar)

    assert_ok(response)
    device = await only_device(database)
    assert device.app_id == APP
    assert device.activation_id == ALICE
    assert device.user_id == "alice"
    assert device.platform == "android"
    assert device.push_token == TOKEN
    assert device.is_active is True
    assert device.environment is None
    assert device.encryption_key is None
    assert device.encryption_key_index is None
    assert started <= device.timestamp_created <= datetime.now(UTC)


@pytest.mark.parametrize(
    ("platform", "stored"),
    [
        ("ios", "ios"),
        ("android", "android"),
        ("huawei", "huawei"),
        ("apns", "ios"),
        ("fcm", "android"),
        ("hms", "huawei"),
        ("APNs", "ios"),
    ],
)
async def test_platform_and_its_aliases_are_stored_by_canonical_name(
    apps: None,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    platform: str,
    stored: str,
) -> None:
    await create(client, registrar, platform=platform)

    assert (await only_device(database)).platform == stored


@pytest.mark.parametrize(
    ("platform", "environment", "stored"),
    [
        ("ios", "production", "production"),
        ("ios", "development", "development"),
        ("apns", "development", "development"),
        ("ios", None, None),
        ("android", "production", None),
        ("huawei", "development", None),
    ],
)
async def test_environment_is_kept_only_for_ios(
    apps: None,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    platform: str,
    environment: str | None,
    stored: str | None,
) -> None:
    await create(client, registrar, platform=platform, environment=environment)

    assert (await only_device(database)).environment == stored


@pytest.mark.parametrize(
    ("status", "active"),
    [
        ("CREATED", False),
        ("PENDING_COMMIT", False),
        ("ACTIVE", True),
        ("BLOCKED", False),
        ("active", True),
    ],
)
async def test_is_active_only_for_an_active_activation(
    apps: None,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    status: str,
    active: bool,
) -> None:
    await create(client, registrar, activationStatus=status)

    assert (await only_device(database)).is_active is active


async def test_same_activation_and_token_updates_the_one_row(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    await create(
        client,
        registrar,
        platform="ios",
        environment="production",
        userId="alice-renamed",
        activationStatus="BLOCKED",
    )

    device = await only_device(database)
    assert device.id == registered.id
    assert (device.activation_id, device.push_token) == (ALICE, TOKEN)
    assert device.platform == "ios"
    assert device.environment == "production"
    assert device.user_id == "alice-renamed"
    assert device.is_active is False


async def test_new_token_for_a_known_activation_replaces_the_token(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    await create(client, registrar, token=OTHER_TOKEN)

    device = await only_device(database)
    assert (device.activation_id, device.push_token) == (ALICE, OTHER_TOKEN)


async def test_known_token_under_another_activation_is_rebound(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    await create(client, registrar, activationId=BOB, userId="bob", activationStatus="BLOCKED")

    device = await only_device(database)
    assert (device.app_id, device.activation_id, device.push_token) == (APP, BOB, TOKEN)
    assert device.user_id == "bob"
    assert device.is_active is False


async def test_rebinding_does_not_carry_the_previous_activations_keys(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    await create(client, registrar, encryptionKey=KEY, encryptionKeyIndex=KEY_INDEX)

    await create(client, registrar, activationId=BOB, userId="bob")

    device = await only_device(database)
    assert device.activation_id == BOB
    assert device.encryption_key is None
    assert device.encryption_key_index is None


async def test_registration_merges_the_activations_row_and_the_tokens_row(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    await create(client, registrar, token=TOKEN)
    await create(client, registrar, activationId=BOB, userId="bob", token=OTHER_TOKEN)

    # ALICE moves to the token BOB held: the token has one owner, ALICE keeps one row.
    await create(client, registrar, token=OTHER_TOKEN)

    assert bindings(await devices(database)) == [(APP, ALICE, OTHER_TOKEN)]


async def test_rebinding_stays_within_the_application(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    await create(client, registrar, appId=OTHER_APP)

    await create(client, registrar, activationId=BOB, userId="bob")

    assert bindings(await devices(database)) == [(APP, BOB, TOKEN), (OTHER_APP, ALICE, TOKEN)]


async def test_reregistration_refreshes_timestamp_created(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    long_ago = datetime(2020, 1, 1, tzinfo=UTC)
    async with database.transaction() as session:
        await session.execute(update(PushDevice).values(timestamp_created=long_ago))
    started = datetime.now(UTC)

    await create(client, registrar)

    device = await only_device(database)
    assert started <= device.timestamp_created <= datetime.now(UTC)


async def test_encryption_keys_are_stored_sealed(
    apps: None,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    server_context: AppContext,
) -> None:
    await create(client, registrar, encryptionKey=KEY, encryptionKeyIndex=KEY_INDEX)

    device = await only_device(database)
    assert device.encryption_key is not None
    assert device.encryption_key_index is not None
    assert KEY not in device.encryption_key
    assert KEY_INDEX not in device.encryption_key_index
    # Sealed, not lost: the server can still open what it stored for this activation.
    box = server_context.secrets
    opened_key = box.open_text(device.encryption_key, key_context("encryption_key", ALICE))
    opened_index = box.open_text(
        device.encryption_key_index, key_context("encryption_key_index", ALICE)
    )
    assert opened_key.decode() == KEY
    assert opened_index.decode() == KEY_INDEX


# Registration of one token for several activations


async def test_create_multi_keeps_one_row_per_activation(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    response = await client.post(
        CREATE_MULTI,
        json=envelope(multi_registration([ALICE, BOB, CAROL], platform="hms")),
        headers=registrar,
    )

    assert_ok(response)
    rows = await devices(database)
    assert sorted(bindings(rows)) == sorted(
        [(APP, ALICE, TOKEN), (APP, BOB, TOKEN), (APP, CAROL, TOKEN)]
    )
    assert {row.platform for row in rows} == {"huawei"}
    assert all(row.is_active for row in rows)


async def test_create_multi_leaves_other_activations_of_the_token_alone(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    response = await client.post(
        CREATE_MULTI, json=envelope(multi_registration([BOB, CAROL])), headers=registrar
    )

    assert_ok(response)
    assert sorted(bindings(await devices(database))) == sorted(
        [(APP, ALICE, TOKEN), (APP, BOB, TOKEN), (APP, CAROL, TOKEN)]
    )


async def test_create_multi_again_updates_the_same_rows(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    body = envelope(multi_registration([ALICE, BOB]))
    assert_ok(await client.post(CREATE_MULTI, json=body, headers=registrar))
    first = {row.activation_id: row.id for row in await devices(database)}

    body = envelope(multi_registration([ALICE, BOB, BOB], token=OTHER_TOKEN, userId="shared"))
    assert_ok(await client.post(CREATE_MULTI, json=body, headers=registrar))

    rows = await devices(database)
    assert {row.activation_id: row.id for row in rows} == first
    assert bindings(rows) == [(APP, ALICE, OTHER_TOKEN), (APP, BOB, OTHER_TOKEN)]
    assert {row.user_id for row in rows} == {"shared"}


async def test_create_multi_seals_keys_per_activation(
    apps: None,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    server_context: AppContext,
) -> None:
    body = multi_registration([ALICE, BOB], encryptionKey=KEY, encryptionKeyIndex=KEY_INDEX)

    assert_ok(await client.post(CREATE_MULTI, json=envelope(body), headers=registrar))

    for device in await devices(database):
        assert device.encryption_key is not None
        assert KEY not in device.encryption_key
        context = key_context("encryption_key", device.activation_id)
        assert server_context.secrets.open_text(device.encryption_key, context).decode() == KEY


# Activation status callback


@pytest.fixture
async def spread(apps: None, client: httpx.AsyncClient, registrar: Headers) -> None:
    """ALICE on both applications with two tokens, BOB on APP: all active."""
    await create(client, registrar)
    await create(client, registrar, appId=OTHER_APP, token=OTHER_TOKEN)
    await create(client, registrar, activationId=BOB, userId="bob", token="bob-token")


async def activity(database: Database) -> dict[tuple[int, str], bool]:
    return {(row.app_id, row.activation_id): row.is_active for row in await devices(database)}


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_status_update_sets_every_device_of_the_activation(
    spread: None, client: httpx.AsyncClient, registrar: Headers, database: Database, method: str
) -> None:
    response = await client.request(
        method, STATUS, json=status_update(ALICE, "BLOCKED"), headers=registrar
    )

    assert_ok(response)
    assert await activity(database) == {
        (APP, ALICE): False,
        (OTHER_APP, ALICE): False,
        (APP, BOB): True,
    }

    response = await client.request(
        method, STATUS, json=status_update(ALICE, "ACTIVE"), headers=registrar
    )

    assert_ok(response)
    assert await activity(database) == {
        (APP, ALICE): True,
        (OTHER_APP, ALICE): True,
        (APP, BOB): True,
    }


@pytest.mark.parametrize("status", ["CREATED", "PENDING_COMMIT", "BLOCKED", "REMOVED"])
async def test_status_update_deactivates_for_every_status_but_active(
    spread: None, client: httpx.AsyncClient, registrar: Headers, database: Database, status: str
) -> None:
    assert_ok(await client.post(STATUS, json=status_update(BOB, status), headers=registrar))

    assert await activity(database) == {
        (APP, ALICE): True,
        (OTHER_APP, ALICE): True,
        (APP, BOB): False,
    }


async def test_status_update_of_an_unknown_activation_changes_nothing(
    spread: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    before = await table_rows(database)

    response = await client.post(STATUS, json=status_update(CAROL, "BLOCKED"), headers=registrar)

    assert_ok(response)
    assert await table_rows(database) == before


async def test_status_update_ignores_unknown_fields(
    spread: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    body = status_update(ALICE, "BLOCKED") | {"timestamp": "2026-01-01T00:00:00Z"}

    assert_ok(await client.post(STATUS, json=body, headers=registrar))

    assert (await activity(database))[(APP, ALICE)] is False


# Removal


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_delete_removes_the_tokens_rows_in_that_application_only(
    apps: None,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    method: str,
) -> None:
    shared = envelope(multi_registration([ALICE, BOB]))
    assert_ok(await client.post(CREATE_MULTI, json=shared, headers=registrar))
    await create(client, registrar, activationId=CAROL, token=OTHER_TOKEN)
    await create(client, registrar, appId=OTHER_APP)

    response = await client.request(method, DELETE, json=envelope(removal()), headers=registrar)

    assert_ok(response)
    assert bindings(await devices(database)) == [
        (APP, CAROL, OTHER_TOKEN),
        (OTHER_APP, ALICE, TOKEN),
    ]


async def test_delete_of_an_unknown_token_changes_nothing(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    before = await table_rows(database)

    response = await client.post(
        DELETE, json=envelope(removal(token=OTHER_TOKEN)), headers=registrar
    )

    assert_ok(response)
    assert await table_rows(database) == before


# Authentication and roles


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer psk_not-a-key-this-server-ever-made"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "psk_no-scheme"},
    ],
    ids=["no header", "unknown key", "empty bearer", "basic scheme", "no scheme"],
)
async def test_unauthenticated_requests_are_refused(
    registered: PushDevice,
    client: httpx.AsyncClient,
    database: Database,
    method: str,
    path: str,
    body: Json,
    headers: Headers,
) -> None:
    response = await refused(database, client.request(method, path, json=body, headers=headers))

    assert_error(response, 401, "ERROR_UNAUTHORIZED")


async def test_a_valid_key_with_the_wrong_scheme_is_refused(
    registered: PushDevice, client: httpx.AsyncClient, keys: dict[Role, str], database: Database
) -> None:
    headers = {"Authorization": f"Token {keys[Role.REGISTRAR]}"}

    response = await refused(
        database, client.post(DELETE, json=envelope(removal()), headers=headers)
    )

    assert_error(response, 401, "ERROR_UNAUTHORIZED")


@pytest.mark.parametrize(("method", "path"), METHODS_AND_PATHS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize(
    "content",
    [b'{"requestObject": {', b"x" * (LIMIT_BYTES + 1)],
    ids=["malformed JSON", "over the limit"],
)
async def test_callers_are_checked_before_their_bodies(
    registered: PushDevice,
    client: httpx.AsyncClient,
    keys: dict[Role, str],
    database: Database,
    method: str,
    path: str,
    content: bytes,
) -> None:
    # A caller without the right must learn nothing about how the server reads its body.
    anonymous = await refused(database, client.request(method, path, content=content))
    sender = await refused(
        database, client.request(method, path, content=content, headers=auth(keys[Role.SENDER]))
    )

    assert_error(anonymous, 401, "ERROR_UNAUTHORIZED")
    assert_error(sender, 403, "ERROR_FORBIDDEN")


FORBIDDEN = [
    (role, method, path, body)
    for method, path, body in ENDPOINTS
    for role in (Role.SENDER, Role.CALLBACK)
    if not (path == STATUS and role is Role.CALLBACK)
]


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    FORBIDDEN,
    ids=[f"{role.value} {method} {path}" for role, method, path, _ in FORBIDDEN],
)
async def test_roles_without_the_right_are_forbidden(
    registered: PushDevice,
    client: httpx.AsyncClient,
    keys: dict[Role, str],
    database: Database,
    role: Role,
    method: str,
    path: str,
    body: Json,
) -> None:
    request = client.request(method, path, json=body, headers=auth(keys[role]))

    response = await refused(database, request)

    assert_error(response, 403, "ERROR_FORBIDDEN")


ALLOWED = [
    (role, method, path, body)
    for method, path, body in ENDPOINTS
    for role in Role
    if role is not Role.SENDER and (path == STATUS or role is not Role.CALLBACK)
]


@pytest.mark.parametrize(
    ("role", "method", "path", "body"),
    ALLOWED,
    ids=[f"{role.value} {method} {path}" for role, method, path, _ in ALLOWED],
)
async def test_roles_with_the_right_are_served(
    registered: PushDevice,
    client: httpx.AsyncClient,
    keys: dict[Role, str],
    database: Database,
    role: Role,
    method: str,
    path: str,
    body: Json,
) -> None:
    before = await table_rows(database)

    response = await client.request(method, path, json=body, headers=auth(keys[role]))

    assert_ok(response)
    assert await table_rows(database) != before


# Unknown application


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CREATE, envelope(registration(appId=UNKNOWN_APP))),
        (CREATE_MULTI, envelope(multi_registration([ALICE, BOB], appId=UNKNOWN_APP))),
        (DELETE, envelope(removal(app_id=UNKNOWN_APP))),
    ],
    ids=["create", "create multi", "delete"],
)
async def test_unknown_application_is_not_found(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    path: str,
    body: Json,
) -> None:
    response = await refused(database, client.post(path, json=body, headers=registrar))

    assert_error(response, 404, "ERROR_NOT_FOUND")


# Concurrency


async def test_concurrent_registrations_of_one_activation_leave_one_row(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    tokens = [f"concurrent-token-{n:02d}" for n in range(10)]

    responses = await asyncio.gather(
        *(
            client.post(CREATE, json=envelope(registration(token=token)), headers=registrar)
            for token in tokens
        )
    )

    assert_answered_or_conflict(responses)
    device = await only_device(database)
    assert device.activation_id == ALICE
    assert device.push_token in tokens


async def test_concurrent_multi_registrations_leave_one_row_per_activation(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    tokens = [f"concurrent-token-{n:02d}" for n in range(10)]

    responses = await asyncio.gather(
        *(
            client.post(
                CREATE_MULTI,
                json=envelope(multi_registration([ALICE, BOB], token=token)),
                headers=registrar,
            )
            for token in tokens
        )
    )

    assert_answered_or_conflict(responses)
    rows = await devices(database)
    assert [row.activation_id for row in rows] == [ALICE, BOB]
    assert all(row.push_token in tokens for row in rows)


async def test_concurrent_registrations_of_one_token_leave_one_owner(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    activations = [f"activation-{n:02d}" for n in range(10)]

    responses = await asyncio.gather(
        *(
            client.post(CREATE, json=envelope(registration(activationId=a)), headers=registrar)
            for a in activations
        )
    )

    assert_answered_or_conflict(responses)
    device = await only_device(database)
    assert device.push_token == TOKEN
    assert device.activation_id in activations


async def test_concurrent_moves_to_one_token_leave_one_owner(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    activations = [f"activation-{n:02d}" for n in range(10)]
    for activation in activations:
        await create(client, registrar, activationId=activation, token=f"own-{activation}")

    responses = await asyncio.gather(
        *(
            client.post(CREATE, json=envelope(registration(activationId=a)), headers=registrar)
            for a in activations
        )
    )

    assert_answered_or_conflict(responses)
    # Each move takes the token from its previous holder, whose row goes with it; only a
    # registration that gave up with 409 leaves its activation on its own token.
    rows = await devices(database)
    assert [row.push_token for row in rows].count(TOKEN) == 1
    conflicts = sum(response.status_code == 409 for response in responses)
    assert len(rows) == 1 + conflicts
    assert all(row.push_token in (TOKEN, f"own-{row.activation_id}") for row in rows)


async def test_concurrent_registrations_of_one_token_in_a_populated_table(
    apps: None, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    # With enough rows the planners read through indexes, where MySQL and MariaDB lock gaps
    # and registrations racing for one token deadlock instead of waiting for each other.
    await populate(database, rows=2000)
    activations = [f"activation-{n:02d}" for n in range(10)]

    responses = await asyncio.gather(
        *(
            client.post(CREATE, json=envelope(registration(activationId=a)), headers=registrar)
            for a in activations
        )
    )

    assert_answered_or_conflict(responses)
    rows = [row for row in await devices(database) if row.push_token == TOKEN]
    assert len(rows) == 1
    assert rows[0].activation_id in activations


async def populate(database: Database, rows: int) -> None:
    """Other devices in both applications, with fresh planner statistics."""
    batch = [
        {
            "app_id": (APP, OTHER_APP)[n % 2],
            "activation_id": f"populated-{n:05d}",
            "user_id": f"user-{n}",
            "platform": "android",
            "push_token": f"populated-token-{n:05d}",
            "timestamp_created": datetime.now(UTC),
            "is_active": True,
        }
        for n in range(rows)
    ]
    async with database.transaction() as session:
        await session.execute(insert(PushDevice), batch)
        dialect = session.get_bind().dialect.name
        analyze = {"sqlite": "ANALYZE", "postgresql": "ANALYZE push_device"}
        await session.execute(text(analyze.get(dialect, "ANALYZE TABLE push_device")))


def assert_answered_or_conflict(responses: list[httpx.Response]) -> None:
    """Racing registrations may lose with 409 ERROR_CONFLICT, never with a server error."""
    assert any(response.status_code == 200 for response in responses)
    for response in responses:
        if response.status_code == 200:
            assert response.json() == {"status": "OK"}
        else:
            assert_error(response, 409, "ERROR_CONFLICT")


# Invalid requests


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        pytest.param(registration(appId="abc"), {"requestObject.appId"}, id="appId not a number"),
        pytest.param(registration(appId=0), {"requestObject.appId"}, id="appId zero"),
        pytest.param(registration(appId=True), {"requestObject.appId"}, id="appId a boolean"),
        pytest.param(registration(token=5), {"requestObject.token"}, id="token a number"),
        pytest.param(registration(token="   "), {"requestObject.token"}, id="token blank"),
        pytest.param(registration(token="t" * 256), {"requestObject.token"}, id="token too long"),
        pytest.param(
            registration(platform="windows"), {"requestObject.platform"}, id="unknown platform"
        ),
        pytest.param(
            registration(environment="staging"), {"requestObject.environment"}, id="bad environment"
        ),
        pytest.param(without(registration(), "token"), {"requestObject.token"}, id="no token"),
        pytest.param(
            without(registration(), "platform"), {"requestObject.platform"}, id="no platform"
        ),
        pytest.param(
            without(registration(), "activationId"),
            {"requestObject.activationId"},
            id="no activationId",
        ),
        pytest.param(
            registration(activationId="a" * 38),
            {"requestObject.activationId"},
            id="activationId too long",
        ),
        pytest.param(
            registration(activationStatus="SLEEPING"),
            {"requestObject.activationStatus"},
            id="unknown activationStatus",
        ),
        pytest.param(
            registration(activationStatus="REMOVED"),
            {"requestObject.activationStatus"},
            id="REMOVED activation",
        ),
        pytest.param(without(registration(), "userId"), {"requestObject.userId"}, id="no userId"),
        pytest.param(
            without(registration(), "activationStatus"),
            {"requestObject.activationStatus"},
            id="no activationStatus",
        ),
        pytest.param(
            without(registration(), "userId", "activationStatus"),
            {"requestObject.userId", "requestObject.activationStatus"},
            id="no userId nor activationStatus",
        ),
        pytest.param(
            registration(encryptionKey="not base64!", encryptionKeyIndex=KEY_INDEX),
            {"requestObject.encryptionKey"},
            id="encryptionKey not base64",
        ),
        pytest.param(
            registration(encryptionKey=b64(bytes(15)), encryptionKeyIndex=KEY_INDEX),
            {"requestObject.encryptionKey"},
            id="encryptionKey of 15 bytes",
        ),
        pytest.param(
            registration(encryptionKey=KEY, encryptionKeyIndex=b64(bytes(32))),
            {"requestObject.encryptionKeyIndex"},
            id="encryptionKeyIndex of 32 bytes",
        ),
        pytest.param(
            registration(encryptionKey=KEY), {"requestObject"}, id="encryptionKey without index"
        ),
        pytest.param(
            registration(encryptionKeyIndex=KEY_INDEX),
            {"requestObject"},
            id="encryptionKeyIndex without key",
        ),
    ],
)
async def test_create_refuses_invalid_fields(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    payload: Json,
    fields: set[str],
) -> None:
    # Accepting any of these would at least refresh the registered row's timestamp_created.
    request = client.post(CREATE, json=envelope(payload), headers=registrar)

    response = await refused(database, request)

    assert set(violations(response)) == fields


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        pytest.param(
            multi_registration([]), {"requestObject.activationIds"}, id="empty activationIds"
        ),
        pytest.param(
            without(multi_registration([BOB]), "activationIds"),
            {"requestObject.activationIds"},
            id="no activationIds",
        ),
        pytest.param(
            multi_registration([BOB]) | {"activationIds": BOB},
            {"requestObject.activationIds"},
            id="activationIds a string",
        ),
        pytest.param(
            multi_registration([BOB, ""]),
            {"requestObject.activationIds[1]"},
            id="blank activation id",
        ),
        pytest.param(
            multi_registration([f"activation-{n}" for n in range(101)]),
            {"requestObject.activationIds"},
            id="101 activations",
        ),
        pytest.param(
            multi_registration([BOB], platform="windows"),
            {"requestObject.platform"},
            id="unknown platform",
        ),
        pytest.param(
            multi_registration([BOB], activationStatus="REMOVED"),
            {"requestObject.activationStatus"},
            id="REMOVED activation",
        ),
        pytest.param(
            without(multi_registration([BOB]), "userId"), {"requestObject.userId"}, id="no userId"
        ),
        pytest.param(
            multi_registration([BOB], encryptionKey=KEY), {"requestObject"}, id="key without index"
        ),
    ],
)
async def test_create_multi_refuses_invalid_fields(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    payload: Json,
    fields: set[str],
) -> None:
    request = client.post(CREATE_MULTI, json=envelope(payload), headers=registrar)

    response = await refused(database, request)

    assert set(violations(response)) == fields


@pytest.mark.parametrize(
    ("payload", "fields"),
    [
        pytest.param(without(removal(), "appId"), {"requestObject.appId"}, id="no appId"),
        pytest.param(
            removal() | {"appId": "abc"}, {"requestObject.appId"}, id="appId not a number"
        ),
        pytest.param(without(removal(), "token"), {"requestObject.token"}, id="no token"),
        pytest.param(removal() | {"token": 5}, {"requestObject.token"}, id="token a number"),
    ],
)
async def test_delete_refuses_invalid_fields(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    payload: Json,
    fields: set[str],
) -> None:
    request = client.post(DELETE, json=envelope(payload), headers=registrar)

    response = await refused(database, request)

    assert set(violations(response)) == fields


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        pytest.param({"activationStatus": "BLOCKED"}, {"activationId"}, id="no activationId"),
        pytest.param(status_update("", "BLOCKED"), {"activationId"}, id="blank activationId"),
        pytest.param(status_update(ALICE, "SLEEPING"), {"activationStatus"}, id="bad status"),
        pytest.param({"activationId": ALICE}, {"activationStatus"}, id="no activationStatus"),
        pytest.param(
            envelope(status_update(ALICE, "BLOCKED")), {"activationId"}, id="enveloped body"
        ),
    ],
)
@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_status_update_refuses_invalid_fields(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    method: str,
    body: Json,
    fields: set[str],
) -> None:
    request = client.request(method, STATUS, json=body, headers=registrar)

    response = await refused(database, request)

    assert set(violations(response)) == fields


async def test_violations_echo_the_invalid_value_but_never_key_material(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    bad_key = b64(bytes(15))
    payload = registration(platform="windows", encryptionKey=bad_key, encryptionKeyIndex=KEY_INDEX)

    response = await refused(
        database, client.post(CREATE, json=envelope(payload), headers=registrar)
    )

    found = violations(response)
    assert found["requestObject.platform"]["invalidValue"] == "windows"
    assert "invalidValue" not in found["requestObject.encryptionKey"]
    assert bad_key not in response.text


# Bodies that are not requests at all


@pytest.mark.parametrize(("method", "path"), METHODS_AND_PATHS, ids=ENDPOINT_IDS)
@pytest.mark.parametrize(
    "content",
    [
        b'{"requestObject": {"appId": 1,',
        b"requestObject=1",
        b"[]",
        b'"a string"',
        b"42",
        b"null",
        b"",
    ],
    ids=["truncated JSON", "form data", "array", "string", "number", "null", "empty"],
)
async def test_bodies_that_are_not_json_objects_are_refused(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    method: str,
    path: str,
    content: bytes,
) -> None:
    request = client.request(method, path, content=content, headers=registrar)

    response = await refused(database, request)

    found = violations(response)
    if path != STATUS:
        assert set(found) == {"requestObject"}


@pytest.mark.parametrize(
    ("method", "path"), ENVELOPED, ids=[f"{method} {path}" for method, path in ENVELOPED]
)
@pytest.mark.parametrize(
    "body",
    [{}, {"request": registration()}, {"requestObject": None}, {"requestObject": [registration()]}],
    ids=["empty object", "misnamed envelope", "null requestObject", "array requestObject"],
)
async def test_requests_without_a_request_object_are_refused(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    method: str,
    path: str,
    body: Json,
) -> None:
    request = client.request(method, path, json=body, headers=registrar)

    response = await refused(database, request)

    assert set(violations(response)) == {"requestObject"}


@pytest.mark.parametrize(("method", "path"), METHODS_AND_PATHS, ids=ENDPOINT_IDS)
async def test_malformed_json_is_named_as_such(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    method: str,
    path: str,
) -> None:
    request = client.request(method, path, content=b'{"activationId": "', headers=registrar)

    response = await refused(database, request)

    error = assert_error(response, 400, "ERROR_REQUEST")
    assert error["message"] == "malformed JSON"
    assert len(error["violations"]) == 1


# Body size


def padded(body: Json, size: int) -> bytes:
    """``body`` as JSON of exactly ``size`` bytes, grown by a field the server ignores."""
    empty = json.dumps(body | {"padding": ""}).encode()
    content = json.dumps(body | {"padding": "x" * (size - len(empty))}).encode()
    assert len(content) == size
    return content


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
async def test_bodies_over_the_limit_are_refused(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    method: str,
    path: str,
    body: Json,
) -> None:
    content = padded(body, LIMIT_BYTES + 1)

    response = await refused(
        database, client.request(method, path, content=content, headers=registrar)
    )

    assert_error(response, 413, "ERROR_PAYLOAD_TOO_LARGE")


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=ENDPOINT_IDS)
async def test_bodies_at_the_limit_are_served(
    registered: PushDevice,
    client: httpx.AsyncClient,
    registrar: Headers,
    database: Database,
    method: str,
    path: str,
    body: Json,
) -> None:
    content = padded(body, LIMIT_BYTES)

    response = await client.request(method, path, content=content, headers=registrar)

    assert_ok(response)


async def test_streamed_bodies_over_the_limit_are_refused(
    registered: PushDevice, client: httpx.AsyncClient, registrar: Headers, database: Database
) -> None:
    content = padded(envelope(registration(token=OTHER_TOKEN)), LIMIT_BYTES + 1)

    async def chunks() -> AsyncIterator[bytes]:
        # Without a Content-Length the server can only count what arrives.
        for start in range(0, len(content), 4096):
            yield content[start : start + 4096]

    response = await refused(database, client.post(CREATE, content=chunks(), headers=registrar))

    assert_error(response, 413, "ERROR_PAYLOAD_TOO_LARGE")
