"""Refused requests: 400 with violations (never echoing a secret) or 413, and no row changed."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.applications.support import (
    ANDROID_UPDATE,
    APP,
    BODY_ENDPOINTS,
    CREATE,
    DETAIL,
    HUAWEI_UPDATE,
    IOS_UPDATE,
    Headers,
    Json,
    Material,
    android_update,
    detail_request,
    envelope,
    error_of,
    huawei_update,
    ios_update,
    valid_payload,
    violations,
    without,
)
from tests.conftest import b64

SECRET_FIELDS = ("requestObject.privateKeyBase64", "requestObject.clientSecret")


Build = Callable[[Material], Any]


@dataclass(frozen=True, slots=True)
class Refused:
    """A request the server must answer with 400 and a violation of ``field``."""

    path: str
    field: str
    payload: Build
    hint: str = ""
    method: str = "POST"


def account_with(material: Material, **fields: Any) -> Json:
    return material.account | fields


def lacking(build: Build, name: str) -> Build:
    """The body ``build`` makes, without the field ``name``."""
    return lambda m: without(build(m), name)


def account_lacking(name: str) -> Build:
    return lambda m: android_update(APP, without(m.account, name))


def case(refused: Refused, name: str) -> Any:
    return pytest.param(refused, id=name)


KEY_FIELD = "requestObject.privateKeyBase64"

IOS_CASES = [
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.p8, privateKeyBase64="no*b64!")),
        "p8-not-base64",
    ),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.p8, privateKeyBase64="")),
        "p8-empty",
    ),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, b"not a key at all, " * 4)),
        "p8-base64-of-garbage",
    ),
    case(
        Refused(
            IOS_UPDATE,
            KEY_FIELD,
            lambda m: ios_update(
                APP, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
            ),
        ),
        "p8-pem-armour-around-garbage",
    ),
    case(Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.rsa_pem), "P-256"), "p8-rsa"),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.p384_pem), "P-256"),
        "p8-ec-p384",
    ),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.secp256k1_pem), "P-256"),
        "p8-ec-secp256k1",
    ),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.ed25519_pem), "P-256"),
        "p8-ed25519",
    ),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.encrypted_p256_pem)),
        "p8-password-protected",
    ),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.unknown_algorithm_der)),
        "p8-unknown-algorithm",
    ),
    case(
        Refused(IOS_UPDATE, KEY_FIELD, lambda m: ios_update(APP, m.p8, privateKeyBase64=12345)),
        "p8-not-a-string",
    ),
    case(
        Refused(
            IOS_UPDATE,
            "requestObject.environment",
            lambda m: ios_update(APP, m.p8, environment="staging"),
        ),
        "environment-unknown",
    ),
    case(
        Refused(IOS_UPDATE, "requestObject.keyId", lambda m: ios_update(APP, m.p8, keyId=123)),
        "key-id-not-a-string",
    ),
    case(
        Refused(IOS_UPDATE, "requestObject.teamId", lambda m: ios_update(APP, m.p8, teamId="   ")),
        "team-id-blank",
    ),
    case(
        Refused(
            IOS_UPDATE, "requestObject.bundle", lambda m: ios_update(APP, m.p8, bundle="b" * 256)
        ),
        "bundle-too-long",
    ),
    *[
        case(
            Refused(
                IOS_UPDATE,
                f"requestObject.{name}",
                lacking(lambda m: ios_update(APP, m.p8), name),
                "is required",
            ),
            f"{name}-missing",
        )
        for name in ("bundle", "keyId", "teamId", "privateKeyBase64")
    ],
]

ANDROID_CASES = [
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, m.account, privateKeyBase64="%%%"),
            "base64",
        ),
        "account-not-base64",
    ),
    case(
        Refused(ANDROID_UPDATE, KEY_FIELD, lambda m: android_update(APP, b"{not json"), "JSON"),
        "account-not-json",
    ),
    case(
        Refused(ANDROID_UPDATE, KEY_FIELD, lambda m: android_update(APP, b"\xff\xfe\x00\xd8")),
        "account-not-text",
    ),
    case(
        Refused(ANDROID_UPDATE, KEY_FIELD, lambda m: android_update(APP, json.dumps([1]).encode())),
        "account-not-an-object",
    ),
    case(
        Refused(ANDROID_UPDATE, KEY_FIELD, lambda m: android_update(APP, b"[" * 30_000)),
        "account-absurdly-nested",
    ),
    *[
        case(
            Refused(
                ANDROID_UPDATE,
                KEY_FIELD,
                account_lacking(name),
                name,
            ),
            f"account-without-{name}",
        )
        for name in ("private_key", "client_email", "token_uri", "project_id")
    ],
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, client_email="  ")),
            "client_email",
        ),
        "account-client-email-blank",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, project_id=42)),
            "project_id",
        ),
        "account-project-id-not-a-string",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, project_id="p" * 256)),
            "project_id",
        ),
        "account-project-id-too-long",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, private_key="-----BEGIN nonsense")),
            "private_key",
        ),
        "account-private-key-unparsable",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, private_key=m.p8.decode())),
            "RSA",
        ),
        "account-private-key-not-rsa",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(
                APP,
                account_with(
                    m,
                    private_key="-----BEGIN PRIVATE KEY-----\n"
                    + b64(m.unknown_algorithm_der)
                    + "\n-----END PRIVATE KEY-----\n",
                ),
            ),
            "private_key",
        ),
        "account-private-key-unknown-algorithm",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, type="authorized_user")),
            "service_account",
        ),
        "account-wrong-type",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, token_uri="ftp://example.com/token")),
            "token_uri",
        ),
        "account-token-uri-not-http",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: android_update(APP, account_with(m, token_uri="https://[oops/token")),
            "token_uri",
        ),
        "account-token-uri-malformed",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            "requestObject.projectId",
            lambda m: android_update(APP, m.account, projectId="p" * 256),
        ),
        "project-id-too-long",
    ),
    case(
        Refused(
            ANDROID_UPDATE,
            KEY_FIELD,
            lambda m: without(android_update(APP, m.account), "privateKeyBase64"),
            "is required",
        ),
        "privateKeyBase64-missing",
    ),
]

SECRET_FIELD = "requestObject.clientSecret"

HUAWEI_CASES = [
    case(
        Refused(HUAWEI_UPDATE, SECRET_FIELD, lambda m: huawei_update(APP, "")),
        "client-secret-empty",
    ),
    case(
        Refused(HUAWEI_UPDATE, SECRET_FIELD, lambda m: huawei_update(APP, "s" * 1025)),
        "client-secret-too-long",
    ),
    case(
        Refused(
            HUAWEI_UPDATE,
            SECRET_FIELD,
            lambda m: huawei_update(APP, m.huawei_secret, clientSecret=987654321),
        ),
        "client-secret-not-a-string",
    ),
    case(
        Refused(
            HUAWEI_UPDATE,
            "requestObject.clientId",
            lambda m: huawei_update(APP, m.huawei_secret, clientId=" "),
        ),
        "client-id-blank",
    ),
    *[
        case(
            Refused(
                HUAWEI_UPDATE,
                f"requestObject.{name}",
                lacking(lambda m: huawei_update(APP, m.huawei_secret), name),
                "is required",
            ),
            f"{name}-missing",
        )
        for name in ("projectId", "clientId", "clientSecret")
    ],
]

OTHER_CASES = [
    case(
        Refused(
            DETAIL,
            "requestObject.includeIos",
            lambda m: detail_request(APP) | {"includeIos": "maybe"},
        ),
        "detail-include-not-boolean",
    ),
    case(Refused(CREATE, "requestObject", lambda m: "APP"), "request-object-not-an-object"),
]


@pytest.mark.parametrize("refused", IOS_CASES + ANDROID_CASES + HUAWEI_CASES + OTHER_CASES)
@pytest.mark.usefixtures("unchanged")
async def test_invalid_fields_are_refused(
    client: httpx.AsyncClient, admin: Headers, material: Material, refused: Refused
) -> None:
    payload = refused.payload(material)

    response = await client.request(
        refused.method, refused.path, headers=admin, json=envelope(payload)
    )

    error = error_of(response, 400, "ERROR_REQUEST")
    found = violations(error)
    assert refused.field in found, found
    assert refused.hint in found[refused.field]["hint"]
    if refused.field in SECRET_FIELDS:
        assert "invalidValue" not in found[refused.field]
        submitted = payload.get(refused.field.removeprefix("requestObject."))
        if isinstance(submitted, str | int) and len(str(submitted)) > 3:
            assert str(submitted) not in response.text


@pytest.mark.parametrize("method", ["POST", "PUT"])
@pytest.mark.usefixtures("unchanged")
async def test_each_method_of_an_update_validates_the_key(
    client: httpx.AsyncClient, admin: Headers, material: Material, method: str
) -> None:
    response = await client.request(
        method, IOS_UPDATE, headers=admin, json=envelope(ios_update(APP, material.p384_pem))
    )

    assert KEY_FIELD in violations(error_of(response, 400, "ERROR_REQUEST"))


@pytest.mark.usefixtures("unchanged")
async def test_a_bad_value_of_a_plain_field_is_echoed(
    client: httpx.AsyncClient, admin: Headers, material: Material
) -> None:
    payload = ios_update(APP, material.p8, environment="staging")

    response = await client.post(IOS_UPDATE, headers=admin, json=envelope(payload))

    found = violations(error_of(response, 400, "ERROR_REQUEST"))
    assert found["requestObject.environment"]["invalidValue"] == "staging"
    # Refusing one field must not leak the valid secret sent alongside it.
    assert payload["privateKeyBase64"] not in response.text
    assert KEY_FIELD not in found


@pytest.mark.usefixtures("unchanged")
async def test_every_violation_is_reported_at_once(
    client: httpx.AsyncClient, admin: Headers, material: Material
) -> None:
    payload = ios_update(APP, material.p8, keyId="", teamId=7, environment="test")

    response = await client.post(IOS_UPDATE, headers=admin, json=envelope(payload))

    found = violations(error_of(response, 400, "ERROR_REQUEST"))
    assert {
        "requestObject.keyId",
        "requestObject.teamId",
        "requestObject.environment",
    } <= found.keys()


# Shapes every body endpoint must refuse

BAD_APP_IDS = {
    "string": "abc",
    "zero": 0,
    "negative": -1,
    "fraction": 1.5,
    "boolean": True,
    "null": None,
    "object": {"id": 1},
    "over-64-bits": 2**63,
}


def _bad_app_ids() -> list[Any]:
    return [
        pytest.param(method, path, value, id=f"{method}-{path}-{name}")
        for method, path in BODY_ENDPOINTS
        for name, value in BAD_APP_IDS.items()
    ]


@pytest.mark.parametrize(("method", "path", "app_id"), _bad_app_ids())
@pytest.mark.usefixtures("unchanged")
async def test_an_invalid_app_id_is_refused(
    client: httpx.AsyncClient,
    admin: Headers,
    material: Material,
    method: str,
    path: str,
    app_id: Any,
) -> None:
    # `True` would otherwise pass for application 1 and act on it.
    payload = valid_payload(path, APP, material)
    assert payload is not None
    payload["appId"] = app_id

    response = await client.request(method, path, headers=admin, json=envelope(payload))

    found = violations(error_of(response, 400, "ERROR_REQUEST"))
    assert "requestObject.appId" in found
    if isinstance(app_id, str | int):
        assert found["requestObject.appId"]["invalidValue"] == app_id


def _body_endpoints() -> list[Any]:
    return [pytest.param(method, path, id=f"{method}-{path}") for method, path in BODY_ENDPOINTS]


@pytest.mark.parametrize(("method", "path"), _body_endpoints())
@pytest.mark.usefixtures("unchanged")
async def test_a_missing_app_id_is_refused(
    client: httpx.AsyncClient, admin: Headers, material: Material, method: str, path: str
) -> None:
    payload = valid_payload(path, APP, material)
    assert payload is not None

    response = await client.request(
        method, path, headers=admin, json=envelope(without(payload, "appId"))
    )

    found = violations(error_of(response, 400, "ERROR_REQUEST"))
    assert found["requestObject.appId"]["hint"] == "is required"
    assert "invalidValue" not in found["requestObject.appId"]


@pytest.mark.parametrize(("method", "path"), _body_endpoints())
@pytest.mark.usefixtures("unchanged")
async def test_malformed_json_is_refused(
    client: httpx.AsyncClient, admin: Headers, method: str, path: str
) -> None:
    response = await client.request(
        method,
        path,
        headers=admin | {"Content-Type": "application/json"},
        content=b'{"requestObject": {"appId": 1,',
    )

    error = error_of(response, 400, "ERROR_REQUEST")
    assert error["message"] == "malformed JSON"
    assert list(violations(error)) == ["requestObject"]


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b"[]", b'{"appId": 1}', b"null"],
    ids=["empty", "empty-object", "array", "no-envelope", "null"],
)
@pytest.mark.usefixtures("unchanged")
async def test_a_body_without_the_envelope_is_refused(
    client: httpx.AsyncClient, admin: Headers, body: bytes
) -> None:
    response = await client.post(CREATE, headers=admin, content=body)

    assert "requestObject" in violations(error_of(response, 400, "ERROR_REQUEST"))


# Size limit (settings.max_body_bytes is 64 KiB in the tests)

OVERSIZED_KEY = "A" * (70 * 1024)


@pytest.mark.parametrize(("method", "path"), _body_endpoints())
@pytest.mark.usefixtures("unchanged")
async def test_a_body_over_the_limit_is_refused(
    client: httpx.AsyncClient, admin: Headers, material: Material, method: str, path: str
) -> None:
    payload = valid_payload(path, APP, material)
    assert payload is not None
    payload["privateKeyBase64"] = OVERSIZED_KEY

    response = await client.request(method, path, headers=admin, json=envelope(payload))

    error = error_of(response, 413, "ERROR_PAYLOAD_TOO_LARGE")
    assert OVERSIZED_KEY[:100] not in response.text
    assert "violations" not in error


@pytest.mark.usefixtures("unchanged")
async def test_a_streamed_body_over_the_limit_is_refused(
    client: httpx.AsyncClient, admin: Headers, material: Material
) -> None:
    # Without a Content-Length the server must count the bytes itself.
    async def chunks() -> AsyncIterator[bytes]:
        yield json.dumps(envelope(ios_update(APP, material.p8)))[:-2].encode()
        for _ in range(70):
            yield b" " * 1024
        yield b"}}"

    response = await client.post(
        IOS_UPDATE, headers=admin | {"Content-Type": "application/json"}, content=chunks()
    )

    assert "content-length" not in response.request.headers
    error_of(response, 413, "ERROR_PAYLOAD_TOO_LARGE")


async def test_a_body_just_under_the_limit_is_accepted(
    client: httpx.AsyncClient, admin: Headers, material: Material, configured_app: int
) -> None:
    # Padding in an ignored field shows the limit, not the content, decided the 413 above.
    payload = ios_update(configured_app, material.p8)
    body = json.dumps(envelope(payload | {"padding": ""}))
    padded = body.replace('"padding": ""', '"padding": "' + "x" * (60 * 1024) + '"')

    response = await client.post(
        IOS_UPDATE, headers=admin | {"Content-Type": "application/json"}, content=padded
    )

    assert response.status_code == 200, response.text
