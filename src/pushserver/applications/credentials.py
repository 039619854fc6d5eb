"""Checks that uploaded provider credentials are what they claim to be."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

from pushserver.errors import RequestInvalid, Violation

SERVICE_ACCOUNT_FIELDS = ("private_key", "client_email", "token_uri", "project_id")
# push_credential.android_project_id is VARCHAR(255); Firebase ids are far shorter anyway.
MAX_PROJECT_ID = 255


@dataclass(frozen=True, slots=True)
class ServiceAccount:
    raw: bytes
    project_id: str
    client_email: str


def _invalid(field: str, hint: str) -> RequestInvalid:
    # The value is a secret: the violation names the field but never repeats what was sent.
    return RequestInvalid(
        "the credential is invalid",
        violations=[Violation(f"requestObject.{field}", hint, hide_value=True)],
    )


def decode_base64(value: str, field: str) -> bytes:
    try:
        decoded = base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(field, "is not valid base64") from None
    if not decoded:
        raise _invalid(field, "is empty")
    return decoded


def check_apns_key(private_key_base64: str) -> bytes:
    """The .p8 bytes, once they prove to hold an EC P-256 private key."""
    field = "privateKeyBase64"
    p8 = decode_base64(private_key_base64, field)
    try:
        if b"-----BEGIN" in p8:
            key: Any = load_pem_private_key(p8, password=None)
        else:
            key = load_der_private_key(p8, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _invalid(field, "is not an unencrypted PKCS#8 private key (.p8 file)") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise _invalid(field, "must be an EC P-256 private key, as Apple issues for APNs")
    return p8


def check_service_account(private_key_base64: str) -> ServiceAccount:
    """The service-account JSON, once it has the fields and key the FCM OAuth flow needs."""
    field = "privateKeyBase64"
    raw = decode_base64(private_key_base64, field)
    try:
        account = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        # RecursionError: absurdly nested JSON must be a 400, not a crash.
        raise _invalid(field, "is not a JSON document") from None
    if not isinstance(account, dict):
        raise _invalid(field, "is not a service-account JSON object")

    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not _nonempty(account.get(name))]
    if missing:
        raise _invalid(field, "the service account lacks " + ", ".join(missing))
    if account.get("type", "service_account") != "service_account":
        raise _invalid(field, "is not a service account (type must be service_account)")

    if len(account["project_id"]) > MAX_PROJECT_ID:
        raise _invalid(field, f"project_id is longer than {MAX_PROJECT_ID} characters")

    try:
        token_uri = urlparse(account["token_uri"])
    except ValueError:
        # urlparse refuses some malformed URLs outright, e.g. an unclosed IPv6 bracket.
        raise _invalid(field, "token_uri is not an HTTP(S) URL") from None
    if token_uri.scheme not in ("https", "http") or not token_uri.netloc:
        raise _invalid(field, "token_uri is not an HTTP(S) URL")
    try:
        key = load_pem_private_key(account["private_key"].encode(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise _invalid(field, "private_key is not a PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise _invalid(field, "private_key must be an RSA key")

    return ServiceAccount(
        raw=raw, project_id=account["project_id"], client_email=account["client_email"]
    )


def _nonempty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
