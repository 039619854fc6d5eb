"""Uploaded credentials are sealed at rest and never appear in a row, a log record or a response.

The needles are the uploaded secrets in every form a careless implementation might keep them:
raw, DER, base64, hex, JSON-escaped, and single lines of their PEM bodies.
"""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from pushserver.applications.service import sealing_context
from pushserver.db.engine import Database
from pushserver.security.apikeys import Role
from pushserver.security.secretbox import MasterKeyError, SecretBox
from tests.applications.support import (
    ANDROID_UPDATE,
    APP,
    CREATE,
    DETAIL,
    HUAWEI_UPDATE,
    IOS_UPDATE,
    OTHER_APP,
    UNKNOWN_APP,
    Headers,
    Material,
    android_update,
    app_ref,
    credential_row,
    detail_request,
    huawei_update,
    ios_update,
    ok_object,
    send,
)
from tests.conftest import TEST_MASTER_KEY, auth, b64, table_rows

SEALED_COLUMNS = ("ios_private_key", "android_private_key", "huawei_client_secret")


def pem_body_lines(pem: bytes) -> list[bytes]:
    """The base64 lines between the PEM armour, each long enough to be unmistakable."""
    return [line for line in pem.splitlines() if line and not line.startswith(b"-----")][:-1]


def secret_forms(material: Material) -> dict[str, bytes]:
    """Every form of every uploaded secret that must not be found anywhere."""
    p8_key = serialization.load_pem_private_key(material.p8, password=None)
    assert isinstance(p8_key, ec.EllipticCurvePrivateKey)
    scalar = p8_key.private_numbers().private_value.to_bytes(32, "big")
    rsa_pem = material.account["private_key"].encode()
    rsa_der = serialization.load_pem_private_key(rsa_pem, password=None).private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    account = material.account_json
    forms = {
        "p8 PEM": material.p8,
        "p8 DER": material.p8_der,
        "p8 DER hex": material.p8_der.hex().encode(),
        "p8 PEM base64": b64(material.p8).encode(),
        "p8 DER base64": b64(material.p8_der).encode(),
        "p8 private scalar": scalar,
        "p8 private scalar hex": scalar.hex().encode(),
        "account JSON": account,
        "account JSON base64": b64(account).encode(),
        "account private_key PEM": rsa_pem,
        "account private_key JSON-escaped": json.dumps(rsa_pem.decode())[1:-1].encode(),
        "account private_key DER": rsa_der,
        "account private_key DER base64": base64.b64encode(rsa_der),
        "huawei client secret": material.huawei_secret.encode(),
    }
    for index, line in enumerate(pem_body_lines(material.p8)):
        forms[f"p8 PEM line {index}"] = line
    for index, line in enumerate(pem_body_lines(rsa_pem)):
        forms[f"account private_key PEM line {index}"] = line
    return forms


def as_bytes(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    return str(value).encode("utf-8", "surrogateescape")


def found_in(haystack: bytes, forms: dict[str, bytes]) -> list[str]:
    return [name for name, needle in forms.items() if needle in haystack]


async def upload_everything(
    client: httpx.AsyncClient, headers: Headers, material: Material
) -> list[httpx.Response]:
    """Every upload an operator makes, the refusals included, and what they read back."""
    requests: list[tuple[str, str, Any]] = [
        ("POST", CREATE, app_ref(APP)),
        ("POST", IOS_UPDATE, ios_update(APP, material.p8)),
        ("PUT", IOS_UPDATE, ios_update(APP, material.p8)),
        ("POST", ANDROID_UPDATE, android_update(APP, material.account)),
        ("PUT", ANDROID_UPDATE, android_update(APP, material.account, projectId="other")),
        ("POST", HUAWEI_UPDATE, huawei_update(APP, material.huawei_secret)),
        # Refused uploads carry the same secrets: a 404, a field error, a key error.
        ("POST", IOS_UPDATE, ios_update(UNKNOWN_APP, material.p8)),
        ("POST", ANDROID_UPDATE, android_update(UNKNOWN_APP, material.account)),
        ("POST", HUAWEI_UPDATE, huawei_update(UNKNOWN_APP, material.huawei_secret)),
        ("POST", IOS_UPDATE, ios_update(APP, material.p8, environment="staging")),
        ("POST", HUAWEI_UPDATE, huawei_update(APP, material.huawei_secret, clientId="")),
        ("POST", IOS_UPDATE, ios_update(APP, material.account["private_key"].encode())),
        (
            "POST",
            ANDROID_UPDATE,
            android_update(APP, material.account | {"private_key": material.p8.decode()}),
        ),
        (
            "POST",
            ANDROID_UPDATE,
            android_update(APP, material.account | {"token_uri": "not a url"}),
        ),
        ("POST", DETAIL, detail_request(APP, ios=True, android=True, huawei=True)),
        ("GET", "/admin/app/list", None),
    ]
    responses = [await send(client, method, path, headers, body) for method, path, body in requests]
    statuses = [response.status_code for response in responses]
    assert statuses == [200] * 6 + [404] * 3 + [400] * 5 + [200] * 2, statuses
    return responses


async def test_no_row_holds_a_secret_in_plaintext(
    client: httpx.AsyncClient, admin: Headers, database: Database, material: Material
) -> None:
    await upload_everything(client, admin, material)
    forms = secret_forms(material)

    row = await credential_row(database, APP)
    assert row is not None
    assert all(row[column] for column in SEALED_COLUMNS), "every secret must be stored"
    leaks = [
        f"{table}.{column}: {name}"
        for table, rows in (await table_rows(database)).items()
        for stored in rows
        for column, value in stored.items()
        if value is not None
        for name in found_in(as_bytes(value), forms)
    ]
    assert leaks == []


@pytest.mark.parametrize("column", SEALED_COLUMNS)
async def test_stored_secrets_open_only_with_the_master_key_and_their_context(
    client: httpx.AsyncClient,
    admin: Headers,
    database: Database,
    material: Material,
    column: str,
) -> None:
    await upload_everything(client, admin, material)
    row = await credential_row(database, APP)
    assert row is not None
    sealed: bytes = row[column]
    uploaded = {
        "ios_private_key": material.p8,
        "android_private_key": material.account_json,
        "huawei_client_secret": material.huawei_secret.encode(),
    }
    box = SecretBox(base64.b64decode(TEST_MASTER_KEY))

    assert box.open(sealed, sealing_context(column, APP)) == uploaded[column]
    # Bound to its application and its column: a copied ciphertext is useless elsewhere.
    with pytest.raises(MasterKeyError):
        box.open(sealed, sealing_context(column, OTHER_APP))
    other_column = next(name for name in SEALED_COLUMNS if name != column)
    with pytest.raises(MasterKeyError):
        box.open(sealed, sealing_context(other_column, APP))
    with pytest.raises(MasterKeyError):
        SecretBox(bytes(32)).open(sealed, sealing_context(column, APP))


async def test_a_rotated_key_replaces_the_sealed_one(
    client: httpx.AsyncClient, admin: Headers, database: Database, material: Material
) -> None:
    await upload_everything(client, admin, material)

    ok_object(await send(client, "PUT", IOS_UPDATE, admin, ios_update(APP, material.other_p8)))

    row = await credential_row(database, APP)
    assert row is not None
    box = SecretBox(base64.b64decode(TEST_MASTER_KEY))
    assert box.open(row["ios_private_key"], sealing_context("ios_private_key", APP)) == (
        material.other_p8
    )


async def test_sealing_the_same_secret_twice_gives_different_ciphertexts(
    client: httpx.AsyncClient, admin: Headers, database: Database, material: Material
) -> None:
    # A fresh nonce per upload: equal ciphertexts would reveal equal keys across apps.
    for app_id in (APP, OTHER_APP):
        ok_object(await send(client, "POST", CREATE, admin, app_ref(app_id)))
        ok_object(await send(client, "POST", IOS_UPDATE, admin, ios_update(app_id, material.p8)))

    first = await credential_row(database, APP)
    second = await credential_row(database, OTHER_APP)
    assert first is not None
    assert second is not None
    assert first["ios_private_key"] != second["ios_private_key"]


@pytest.fixture
def every_log(
    captured_logs: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """captured_logs, plus the loggers that pin their own level (SQLAlchemy pins WARNING) or
    do not propagate: SQL statements with their parameters are where a plaintext would show."""
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(logger, logging.Logger):
            continue
        if logger.level > logging.DEBUG:
            captured_logs.set_level(logging.DEBUG, logger=name)
        if not logger.propagate:
            monkeypatch.setattr(logger, "propagate", True)
    return captured_logs


def record_texts(record: logging.LogRecord) -> list[bytes]:
    """Everything a handler could write for ``record``: message, arguments and traceback."""
    texts = [as_bytes(record.msg), as_bytes(record.getMessage())]
    args = record.args if isinstance(record.args, tuple) else (record.args,)
    for arg in args:
        texts += [as_bytes(arg), repr(arg).encode()]
    texts.append(logging.Formatter("%(message)s").format(record).encode())
    return texts


async def test_no_log_record_holds_a_secret(
    client: httpx.AsyncClient,
    keys: dict[Role, str],
    material: Material,
    every_log: pytest.LogCaptureFixture,
) -> None:
    api_key = keys[Role.ADMIN]

    await upload_everything(client, auth(api_key), material)

    records = every_log.records
    messages = [record.getMessage() for record in records]
    # The capture sees the uploads, down to DEBUG: otherwise finding nothing proves nothing.
    for provider in ("apns", "fcm", "hms"):
        assert any(f"provider={provider}" in message for message in messages), messages
    assert any(record.levelno == logging.DEBUG for record in records)
    assert any(record.name.startswith("sqlalchemy.engine") for record in records)
    forms = secret_forms(material) | {"API key": api_key.encode()}
    leaks = [
        f"{record.name}: {name}"
        for record in records
        for text in record_texts(record)
        for name in found_in(text, forms)
    ]
    assert leaks == []


async def test_no_response_holds_a_secret(
    client: httpx.AsyncClient, admin: Headers, material: Material
) -> None:
    responses = await upload_everything(client, admin, material)

    forms = secret_forms(material)
    leaks = [
        f"{response.request.method} {response.request.url.path} {response.status_code}: {name}"
        for response in responses
        for name in found_in(response.content, forms)
    ]
    assert leaks == []
