"""The application administration endpoints: answers, roles, and rows left in push_credential."""

from __future__ import annotations

import asyncio
from itertools import product
from typing import Any

import httpx
import pytest

from pushserver.db.engine import Database
from pushserver.security.apikeys import Role
from tests.applications.support import (
    ANDROID_COLUMNS,
    ANDROID_REMOVE,
    ANDROID_UPDATE,
    APP,
    BODY_ENDPOINTS,
    BUNDLE,
    CREATE,
    DETAIL,
    ENDPOINTS,
    HUAWEI_CLIENT,
    HUAWEI_COLUMNS,
    HUAWEI_PROJECT,
    HUAWEI_REMOVE,
    HUAWEI_UPDATE,
    IOS_COLUMNS,
    IOS_REMOVE,
    IOS_UPDATE,
    KEY_ID,
    OTHER_APP,
    REMOVE_METHODS,
    TEAM_ID,
    UNKNOWN_APP,
    UPDATE_METHODS,
    Headers,
    Json,
    Material,
    android_update,
    app_ref,
    application_list,
    credential_row,
    detail_request,
    error_of,
    huawei_update,
    ios_update,
    ok_object,
    send,
    valid_payload,
    without,
)
from tests.conftest import auth, table_rows

ALL_CREDENTIAL_COLUMNS = IOS_COLUMNS + ANDROID_COLUMNS + HUAWEI_COLUMNS


def summary(app_id: int, *, ios: bool = False, android: bool = False, huawei: bool = False) -> Json:
    return {"appId": app_id, "ios": ios, "android": android, "huawei": huawei}


# Create and list


async def test_create_answers_the_app_id_and_stores_an_empty_application(
    client: httpx.AsyncClient, admin: Headers, database: Database
) -> None:
    created = ok_object(await send(client, "POST", CREATE, admin, app_ref(APP)))

    assert created == {"appId": APP}
    row = await credential_row(database, APP)
    assert row is not None
    assert {column: row[column] for column in ALL_CREDENTIAL_COLUMNS} == dict.fromkeys(
        ALL_CREDENTIAL_COLUMNS
    )
    assert await application_list(client, admin) == [summary(APP)]


async def test_list_is_empty_before_any_application_exists(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    assert await application_list(client, admin) == []


async def test_list_shows_every_application(client: httpx.AsyncClient, admin: Headers) -> None:
    for app_id in (3, APP, OTHER_APP):
        ok_object(await send(client, "POST", CREATE, admin, app_ref(app_id)))

    listed = await application_list(client, admin)

    assert sorted(listed, key=lambda item: item["appId"]) == [
        summary(APP),
        summary(OTHER_APP),
        summary(3),
    ]


async def test_creating_an_existing_application_is_a_conflict(
    client: httpx.AsyncClient, admin: Headers, database: Database, configured_app: int
) -> None:
    before = await table_rows(database)

    response = await send(client, "POST", CREATE, admin, app_ref(configured_app))

    error_of(response, 409, "ERROR_CONFLICT")
    # Above all, the existing credentials survive.
    assert await table_rows(database) == before


async def test_concurrent_creates_of_one_application_make_one_row(
    client: httpx.AsyncClient, admin: Headers, database: Database
) -> None:
    responses = await asyncio.gather(
        *(send(client, "POST", CREATE, admin, app_ref(APP)) for _ in range(4))
    )

    statuses = sorted(response.status_code for response in responses)
    assert statuses == [200, 409, 409, 409], [response.text for response in responses]
    for response in responses:
        if response.status_code == 409:
            error_of(response, 409, "ERROR_CONFLICT")
    assert len((await table_rows(database))["push_credential"]) == 1


async def test_the_largest_application_id_round_trips(
    client: httpx.AsyncClient, admin: Headers, database: Database
) -> None:
    largest = 2**63 - 1

    assert ok_object(await send(client, "POST", CREATE, admin, app_ref(largest))) == {
        "appId": largest
    }
    assert await application_list(client, admin) == [summary(largest)]
    assert await credential_row(database, largest) is not None


@pytest.mark.parametrize(
    ("update_method", "remove_method"),
    list(zip(UPDATE_METHODS, REMOVE_METHODS, strict=True)),
)
async def test_list_flags_follow_credentials_as_they_are_set_and_removed(
    client: httpx.AsyncClient,
    admin: Headers,
    material: Material,
    update_method: str,
    remove_method: str,
) -> None:
    for app_id in (APP, OTHER_APP):
        ok_object(await send(client, "POST", CREATE, admin, app_ref(app_id)))
    untouched = summary(OTHER_APP)
    steps: list[tuple[str, str, Json | None, Json]] = [
        (update_method, IOS_UPDATE, ios_update(APP, material.p8), {"ios": True}),
        (update_method, ANDROID_UPDATE, android_update(APP, material.account), {"android": True}),
        (
            update_method,
            HUAWEI_UPDATE,
            huawei_update(APP, material.huawei_secret),
            {"huawei": True},
        ),
        (remove_method, IOS_REMOVE, app_ref(APP), {"ios": False}),
        (remove_method, ANDROID_REMOVE, app_ref(APP), {"android": False}),
        (remove_method, HUAWEI_REMOVE, app_ref(APP), {"huawei": False}),
    ]
    expected = summary(APP)

    for method, path, payload, flips in steps:
        assert ok_object(await send(client, method, path, admin, payload)) is None
        expected |= flips
        listed = await application_list(client, admin)
        assert sorted(listed, key=lambda item: item["appId"]) == [expected, untouched], path


# Updates


@pytest.mark.parametrize("method", UPDATE_METHODS)
async def test_ios_update_stores_the_settings_and_a_sealed_key(
    client: httpx.AsyncClient, admin: Headers, database: Database, material: Material, method: str
) -> None:
    ok_object(await send(client, "POST", CREATE, admin, app_ref(APP)))
    created = await credential_row(database, APP)
    assert created is not None

    response = await send(client, method, IOS_UPDATE, admin, ios_update(APP, material.p8))

    assert ok_object(response) is None
    row = await credential_row(database, APP)
    assert row is not None
    assert (row["ios_bundle"], row["ios_key_id"], row["ios_team_id"], row["ios_environment"]) == (
        BUNDLE,
        KEY_ID,
        TEAM_ID,
        "production",
    )
    assert isinstance(row["ios_private_key"], bytes)
    assert row["ios_private_key"]
    assert row["ios_private_key"] != material.p8
    assert all(row[column] is None for column in ANDROID_COLUMNS + HUAWEI_COLUMNS)
    # Running processes reload credentials when this timestamp moves.
    assert row["timestamp_last_updated"] > created["timestamp_last_updated"]


async def test_ios_update_takes_a_der_p8_and_no_environment(
    client: httpx.AsyncClient, admin: Headers, database: Database, material: Material
) -> None:
    ok_object(await send(client, "POST", CREATE, admin, app_ref(APP)))
    payload = without(ios_update(APP, material.p8_der), "environment")

    ok_object(await send(client, "POST", IOS_UPDATE, admin, payload))

    row = await credential_row(database, APP)
    assert row is not None
    assert row["ios_private_key"] is not None
    # No app-wide environment: every device keeps its own APNs host.
    assert row["ios_environment"] is None
    assert (await application_list(client, admin))[0]["ios"] is True


async def test_ios_update_replaces_the_previous_settings(
    client: httpx.AsyncClient,
    admin: Headers,
    database: Database,
    material: Material,
    configured_app: int,
) -> None:
    before = await credential_row(database, configured_app)
    assert before is not None
    rotated = ios_update(
        configured_app,
        material.other_p8,
        bundle="com.example.other",
        keyId="NEWKEY0001",
        environment="development",
    )

    ok_object(await send(client, "PUT", IOS_UPDATE, admin, rotated))

    after = await credential_row(database, configured_app)
    assert after is not None
    assert (after["ios_bundle"], after["ios_key_id"], after["ios_environment"]) == (
        "com.example.other",
        "NEWKEY0001",
        "development",
    )
    assert after["ios_private_key"] != before["ios_private_key"]
    assert {column: after[column] for column in ANDROID_COLUMNS + HUAWEI_COLUMNS} == {
        column: before[column] for column in ANDROID_COLUMNS + HUAWEI_COLUMNS
    }


@pytest.mark.parametrize("method", UPDATE_METHODS)
@pytest.mark.parametrize("project_id", [None, "bank-prod-7"], ids=["from-service-account", "given"])
async def test_android_update_stores_the_project_and_a_sealed_service_account(
    client: httpx.AsyncClient,
    admin: Headers,
    database: Database,
    material: Material,
    method: str,
    project_id: str | None,
) -> None:
    stored = project_id or material.account["project_id"]
    ok_object(await send(client, "POST", CREATE, admin, app_ref(APP)))
    payload = android_update(APP, material.account)
    if project_id is not None:
        payload["projectId"] = project_id

    ok_object(await send(client, method, ANDROID_UPDATE, admin, payload))

    row = await credential_row(database, APP)
    assert row is not None
    assert row["android_project_id"] == stored
    assert isinstance(row["android_private_key"], bytes)
    assert row["android_private_key"] != material.account_json
    assert all(row[column] is None for column in IOS_COLUMNS + HUAWEI_COLUMNS)
    # The legacy FCM server key is dead and must stay untouched.
    assert row["android_server_key"] is None
    detail = ok_object(await send(client, "POST", DETAIL, admin, detail_request(android=True)))
    assert detail["androidProjectId"] == stored


@pytest.mark.parametrize("method", UPDATE_METHODS)
async def test_huawei_update_stores_the_ids_and_a_sealed_secret(
    client: httpx.AsyncClient, admin: Headers, database: Database, material: Material, method: str
) -> None:
    ok_object(await send(client, "POST", CREATE, admin, app_ref(APP)))

    response = await send(
        client, method, HUAWEI_UPDATE, admin, huawei_update(APP, material.huawei_secret)
    )

    assert ok_object(response) is None
    row = await credential_row(database, APP)
    assert row is not None
    assert (row["huawei_project_id"], row["huawei_client_id"]) == (HUAWEI_PROJECT, HUAWEI_CLIENT)
    assert isinstance(row["huawei_client_secret"], bytes)
    assert row["huawei_client_secret"] != material.huawei_secret.encode()
    assert all(row[column] is None for column in IOS_COLUMNS + ANDROID_COLUMNS)


async def test_identifiers_are_stored_without_surrounding_whitespace(
    client: httpx.AsyncClient, admin: Headers, database: Database, material: Material
) -> None:
    ok_object(await send(client, "POST", CREATE, admin, app_ref(APP)))
    payload = ios_update(APP, material.p8, bundle=f"  {BUNDLE}\n", keyId=f" {KEY_ID} ")

    ok_object(await send(client, "POST", IOS_UPDATE, admin, payload))

    row = await credential_row(database, APP)
    assert row is not None
    assert (row["ios_bundle"], row["ios_key_id"]) == (BUNDLE, KEY_ID)


# Removal


@pytest.mark.parametrize("method", REMOVE_METHODS)
@pytest.mark.parametrize(
    ("path", "cleared"),
    [(IOS_REMOVE, IOS_COLUMNS), (ANDROID_REMOVE, ANDROID_COLUMNS), (HUAWEI_REMOVE, HUAWEI_COLUMNS)],
    ids=["ios", "android", "huawei"],
)
async def test_remove_clears_one_provider_and_keeps_the_others(
    client: httpx.AsyncClient,
    admin: Headers,
    database: Database,
    configured_app: int,
    method: str,
    path: str,
    cleared: tuple[str, ...],
) -> None:
    before = await credential_row(database, configured_app)
    assert before is not None
    assert all(before[column] is not None for column in ALL_CREDENTIAL_COLUMNS)

    assert ok_object(await send(client, method, path, admin, app_ref(configured_app))) is None

    after = await credential_row(database, configured_app)
    assert after is not None
    assert all(after[column] is None for column in cleared)
    kept = [column for column in ALL_CREDENTIAL_COLUMNS if column not in cleared]
    assert {column: after[column] for column in kept} == {column: before[column] for column in kept}
    assert after["timestamp_last_updated"] > before["timestamp_last_updated"]


async def test_remove_keeps_the_application(
    client: httpx.AsyncClient, admin: Headers, configured_app: int
) -> None:
    for path in (IOS_REMOVE, ANDROID_REMOVE, HUAWEI_REMOVE):
        ok_object(await send(client, "POST", path, admin, app_ref(configured_app)))

    assert await application_list(client, admin) == [summary(configured_app)]


# Detail

IOS_DETAIL: Json = {
    "iosBundle": BUNDLE,
    "iosKeyId": KEY_ID,
    "iosTeamId": TEAM_ID,
    "iosEnvironment": "production",
}
HUAWEI_DETAIL: Json = {"huaweiProjectId": HUAWEI_PROJECT, "huaweiClientId": HUAWEI_CLIENT}


@pytest.mark.parametrize(
    ("ios", "android", "huawei"),
    list(product((False, True), repeat=3)),
    ids=lambda flag: "with" if flag else "without",
)
async def test_detail_returns_only_the_providers_asked_for(
    client: httpx.AsyncClient,
    admin: Headers,
    material: Material,
    configured_app: int,
    ios: bool,
    android: bool,
    huawei: bool,
) -> None:
    payload = detail_request(configured_app, ios=ios, android=android, huawei=huawei)

    detail = ok_object(await send(client, "POST", DETAIL, admin, payload))

    expected: Json = {
        "application": summary(configured_app, ios=True, android=True, huawei=True),
        "appId": configured_app,
    }
    if ios:
        expected |= IOS_DETAIL
    if android:
        expected["androidProjectId"] = material.account["project_id"]
    if huawei:
        expected |= HUAWEI_DETAIL
    assert detail == expected


async def test_detail_flags_default_to_false(
    client: httpx.AsyncClient, admin: Headers, configured_app: int
) -> None:
    detail = ok_object(await send(client, "POST", DETAIL, admin, app_ref(configured_app)))

    assert detail == {
        "application": summary(configured_app, ios=True, android=True, huawei=True),
        "appId": configured_app,
    }


async def test_detail_of_an_application_without_credentials_has_no_provider_fields(
    client: httpx.AsyncClient, admin: Headers
) -> None:
    ok_object(await send(client, "POST", CREATE, admin, app_ref(APP)))

    payload = detail_request(APP, ios=True, android=True, huawei=True)
    detail = ok_object(await send(client, "POST", DETAIL, admin, payload))

    # Null fields are left out of responses.
    assert detail == {"application": summary(APP), "appId": APP}


# Authentication and roles


def _unauthenticated() -> list[Any]:
    variants = {
        "no-key": {},
        "unknown-key": auth("psk_" + "x" * 43),
        "empty-bearer": {"Authorization": "Bearer "},
        "basic-scheme": {"Authorization": "Basic YWRtaW46YWRtaW4="},
    }
    return [
        pytest.param(method, path, headers, id=f"{method}-{path}-{name}")
        for (method, path), (name, headers) in product(ENDPOINTS, variants.items())
    ]


@pytest.mark.parametrize(("method", "path", "headers"), _unauthenticated())
async def test_requests_without_a_known_key_are_unauthorized(
    client: httpx.AsyncClient,
    database: Database,
    material: Material,
    configured_app: int,
    method: str,
    path: str,
    headers: Headers,
) -> None:
    target = OTHER_APP if path == CREATE else configured_app
    before = await table_rows(database)

    response = await send(client, method, path, headers, valid_payload(path, target, material))

    error_of(response, 401, "ERROR_UNAUTHORIZED")
    assert await table_rows(database) == before


def _forbidden() -> list[Any]:
    sender = [(Role.SENDER, method, path) for method, path in BODY_ENDPOINTS]
    others = [
        (role, method, path)
        for role in (Role.REGISTRAR, Role.CALLBACK)
        for method, path in ENDPOINTS
    ]
    return [
        pytest.param(role, method, path, id=f"{role.value}-{method}-{path}")
        for role, method, path in sender + others
    ]


@pytest.mark.parametrize(("role", "method", "path"), _forbidden())
async def test_roles_other_than_admin_are_forbidden(
    client: httpx.AsyncClient,
    database: Database,
    keys: dict[Role, str],
    material: Material,
    configured_app: int,
    role: Role,
    method: str,
    path: str,
) -> None:
    # Each request would succeed for an admin, so only the role can explain the refusal.
    target = OTHER_APP if path == CREATE else configured_app
    before = await table_rows(database)

    response = await send(
        client, method, path, auth(keys[role]), valid_payload(path, target, material)
    )

    error = error_of(response, 403, "ERROR_FORBIDDEN")
    assert role.value in error["message"]
    assert await table_rows(database) == before


async def test_sender_may_read_the_list(
    client: httpx.AsyncClient, keys: dict[Role, str], configured_app: int
) -> None:
    listed = await application_list(client, auth(keys[Role.SENDER]))

    assert listed == [summary(configured_app, ios=True, android=True, huawei=True)]


@pytest.mark.parametrize(
    "body",
    [b'{"requestObject": {"appId": ', b'{"requestObject": {"appId": "abc"}}', b""],
    ids=["malformed-json", "invalid-field", "empty"],
)
@pytest.mark.parametrize(
    ("role", "status", "code"),
    [
        (None, 401, "ERROR_UNAUTHORIZED"),
        (Role.SENDER, 403, "ERROR_FORBIDDEN"),
        (Role.REGISTRAR, 403, "ERROR_FORBIDDEN"),
    ],
    ids=["no-key", "sender", "registrar"],
)
@pytest.mark.usefixtures("unchanged")
async def test_a_refused_caller_learns_nothing_about_the_body(
    client: httpx.AsyncClient,
    keys: dict[Role, str],
    body: bytes,
    role: Role | None,
    status: int,
    code: str,
) -> None:
    headers = {} if role is None else auth(keys[role])

    response = await client.post(
        IOS_UPDATE, headers=headers | {"Content-Type": "application/json"}, content=body
    )

    assert "violations" not in error_of(response, status, code)


@pytest.mark.usefixtures("unchanged")
async def test_an_unknown_key_is_refused_before_an_unknown_application(
    client: httpx.AsyncClient,
) -> None:
    response = await send(
        client, "POST", DETAIL, auth("psk_" + "y" * 43), detail_request(UNKNOWN_APP)
    )

    error_of(response, 401, "ERROR_UNAUTHORIZED")


# Unknown applications


def _not_found() -> list[Any]:
    return [
        pytest.param(method, path, id=f"{method}-{path}")
        for method, path in BODY_ENDPOINTS
        if path != CREATE
    ]


@pytest.mark.parametrize(("method", "path"), _not_found())
async def test_an_unknown_application_is_not_found(
    client: httpx.AsyncClient,
    admin: Headers,
    database: Database,
    material: Material,
    configured_app: int,
    method: str,
    path: str,
) -> None:
    before = await table_rows(database)

    response = await send(client, method, path, admin, valid_payload(path, UNKNOWN_APP, material))

    error = error_of(response, 404, "ERROR_NOT_FOUND")
    assert str(UNKNOWN_APP) in error["message"]
    assert await table_rows(database) == before
