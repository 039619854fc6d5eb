"""Request bodies, calls and checks shared by the application administration tests."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select

from pushserver.db.engine import Database
from pushserver.db.models import PushCredential
from tests.conftest import b64

Json = dict[str, Any]
Headers = dict[str, str]

APP = 1
OTHER_APP = 2
UNKNOWN_APP = 999

LIST = "/admin/app/list"
DETAIL = "/admin/app/detail"
CREATE = "/admin/app/create"
IOS_UPDATE = "/admin/app/ios/update"
IOS_REMOVE = "/admin/app/ios/remove"
ANDROID_UPDATE = "/admin/app/android/update"
ANDROID_REMOVE = "/admin/app/android/remove"
HUAWEI_UPDATE = "/admin/app/huawei/update"
HUAWEI_REMOVE = "/admin/app/huawei/remove"

UPDATE_METHODS = ("POST", "PUT")
REMOVE_METHODS = ("POST", "DELETE")

# Every (method, path) pair the contract lists under "Administration of applications".
ENDPOINTS: list[tuple[str, str]] = [
    ("GET", LIST),
    ("POST", DETAIL),
    ("POST", CREATE),
    *[
        (method, path)
        for path in (IOS_UPDATE, ANDROID_UPDATE, HUAWEI_UPDATE)
        for method in UPDATE_METHODS
    ],
    *[
        (method, path)
        for path in (IOS_REMOVE, ANDROID_REMOVE, HUAWEI_REMOVE)
        for method in REMOVE_METHODS
    ],
]
BODY_ENDPOINTS = [(method, path) for method, path in ENDPOINTS if path != LIST]

IOS_COLUMNS = ("ios_bundle", "ios_key_id", "ios_team_id", "ios_environment", "ios_private_key")
ANDROID_COLUMNS = ("android_project_id", "android_private_key")
HUAWEI_COLUMNS = ("huawei_project_id", "huawei_client_id", "huawei_client_secret")

BUNDLE = "com.example.bank"
KEY_ID = "ABC123DEFG"
TEAM_ID = "TEAM456HIJ"
HUAWEI_PROJECT = "736430079244623135"
HUAWEI_CLIENT = "108374211"


@dataclass(frozen=True, slots=True)
class Material:
    """Key material for the uploads: the valid credentials and keys the server must refuse."""

    p8: bytes
    p8_der: bytes
    other_p8: bytes
    account: dict[str, str]
    huawei_secret: str
    rsa_pem: bytes
    p384_pem: bytes
    secp256k1_pem: bytes
    ed25519_pem: bytes
    encrypted_p256_pem: bytes
    unknown_algorithm_der: bytes

    @property
    def account_json(self) -> bytes:
        """The service-account file exactly as uploaded."""
        return json.dumps(self.account).encode()


# Request bodies (the requestObject payloads)


def envelope(payload: Any) -> Json:
    return {"requestObject": payload}


def app_ref(app_id: int = APP) -> Json:
    return {"appId": app_id}


def detail_request(
    app_id: int = APP, *, ios: bool = False, android: bool = False, huawei: bool = False
) -> Json:
    return {"appId": app_id, "includeIos": ios, "includeAndroid": android, "includeHuawei": huawei}


def ios_update(app_id: int, p8: bytes, **fields: Any) -> Json:
    payload: Json = {
        "appId": app_id,
        "bundle": BUNDLE,
        "keyId": KEY_ID,
        "teamId": TEAM_ID,
        "environment": "production",
        "privateKeyBase64": b64(p8),
    }
    return payload | fields


def android_update(app_id: int, account: dict[str, Any] | bytes, **fields: Any) -> Json:
    document = account if isinstance(account, bytes) else json.dumps(account).encode()
    return {"appId": app_id, "privateKeyBase64": b64(document)} | fields


def huawei_update(app_id: int, secret: str, **fields: Any) -> Json:
    payload: Json = {
        "appId": app_id,
        "projectId": HUAWEI_PROJECT,
        "clientId": HUAWEI_CLIENT,
        "clientSecret": secret,
    }
    return payload | fields


def without(payload: Json, *names: str) -> Json:
    return {name: value for name, value in payload.items() if name not in names}


def valid_payload(path: str, app_id: int, material: Material) -> Json | None:
    """A body the endpoint accepts for an existing ``app_id`` (for create: a new one)."""
    if path == LIST:
        return None
    if path == DETAIL:
        return detail_request(app_id, ios=True, android=True, huawei=True)
    if path == IOS_UPDATE:
        return ios_update(app_id, material.p8)
    if path == ANDROID_UPDATE:
        return android_update(app_id, material.account)
    if path == HUAWEI_UPDATE:
        return huawei_update(app_id, material.huawei_secret)
    return app_ref(app_id)


# Calls


async def send(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    headers: Headers,
    payload: Any = None,
) -> httpx.Response:
    if payload is None:
        return await client.request(method, path, headers=headers)
    return await client.request(method, path, headers=headers, json=envelope(payload))


async def configure(client: httpx.AsyncClient, headers: Headers, material: Material) -> None:
    """Create APP with credentials for all three providers."""
    for path, payload in [
        (CREATE, app_ref(APP)),
        (IOS_UPDATE, ios_update(APP, material.p8)),
        (ANDROID_UPDATE, android_update(APP, material.account)),
        (HUAWEI_UPDATE, huawei_update(APP, material.huawei_secret)),
    ]:
        ok_object(await send(client, "POST", path, headers, payload))


async def application_list(client: httpx.AsyncClient, headers: Headers) -> list[Json]:
    listed: list[Json] = ok_object(await client.get(LIST, headers=headers))["applicationList"]
    return listed


# Checks


def ok_object(response: httpx.Response) -> Any:
    """The responseObject of a success envelope (None for a bare OK)."""
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "OK", body
    return body.get("responseObject")


def error_of(response: httpx.Response, status: int, code: str) -> Json:
    """The responseObject of an error envelope, once status and code are as expected."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["status"] == "ERROR", body
    error: Json = body["responseObject"]
    assert error["code"] == code, error
    assert error["message"], error
    return error


def violations(error: Json) -> dict[str, Json]:
    """The violations of an ERROR_REQUEST, keyed by fieldName."""
    found = {violation["fieldName"]: violation for violation in error.get("violations", [])}
    assert found, f"no violations in {error}"
    for violation in found.values():
        assert violation["hint"], violation
    return found


async def credential_row(database: Database, app_id: int) -> dict[str, Any] | None:
    """The raw push_credential row, read past the API."""
    table = PushCredential.__table__
    async with database.engine.connect() as conn:
        row = (await conn.execute(select(table).where(table.c.app_id == app_id))).first()
    return None if row is None else dict(row._mapping)
