"""Fixtures of the application tests: key material, a configured application, a no-change check."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from pushserver.db.engine import Database
from tests.applications.support import APP, Headers, Material, configure
from tests.conftest import table_rows


def _pkcs8(key: PrivateKeyTypes, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def _der(tag: int, content: bytes) -> bytes:
    assert len(content) < 128, "short-form lengths are enough here"
    return bytes([tag, len(content)]) + content


def _unknown_algorithm_pkcs8() -> bytes:
    """A well-formed PKCS#8 envelope whose algorithm OID (1.2.3.4) no library knows."""
    algorithm = _der(0x30, _der(0x06, bytes([0x2A, 0x03, 0x04])))
    return _der(0x30, _der(0x02, b"\x00") + algorithm + _der(0x04, _der(0x30, b"")))


@pytest.fixture(scope="session")
def material(apns_p8: bytes, service_account: dict[str, str], rsa_private_pem: str) -> Material:
    p8_key = serialization.load_pem_private_key(apns_p8, password=None)
    return Material(
        p8=apns_p8,
        p8_der=p8_key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
        other_p8=_pkcs8(ec.generate_private_key(ec.SECP256R1())),
        account=service_account,
        huawei_secret="hms-" + secrets.token_urlsafe(32),
        rsa_pem=rsa_private_pem.encode(),
        p384_pem=_pkcs8(ec.generate_private_key(ec.SECP384R1())),
        secp256k1_pem=_pkcs8(ec.generate_private_key(ec.SECP256K1())),
        ed25519_pem=_pkcs8(ed25519.Ed25519PrivateKey.generate()),
        encrypted_p256_pem=_pkcs8(ec.generate_private_key(ec.SECP256R1()), b"passphrase"),
        unknown_algorithm_der=_unknown_algorithm_pkcs8(),
    )


@pytest.fixture
async def configured_app(client: httpx.AsyncClient, admin: Headers, material: Material) -> int:
    """APP, with APNs, FCM and HMS credentials all set."""
    await configure(client, admin, material)
    return APP


@pytest.fixture
async def unchanged(database: Database, configured_app: int) -> AsyncIterator[None]:
    """Fails the test unless it leaves every table exactly as configured_app made it."""
    before = await table_rows(database)
    yield
    assert await table_rows(database) == before
