"""AES-256-GCM encryption of secrets at rest under the server's master key."""

from __future__ import annotations

import base64
import binascii
import logging
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from pushserver.settings import Settings

log = logging.getLogger(__name__)

_VERSION = b"\x01"
_NONCE_BYTES = 12
_TEXT_PREFIX = "v1:"
MASTER_KEY_FILE = "master.key"


class MasterKeyError(Exception):
    """The master key is missing, malformed, or does not match the stored secrets."""


class SecretBox:
    """Seals and opens secrets; ``context`` binds a ciphertext to the row and column it is for."""

    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise MasterKeyError("the master key must be 32 bytes")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if not sealed or sealed[:1] != _VERSION:
            raise MasterKeyError("stored secret has an unknown format")
        nonce = sealed[1 : 1 + _NONCE_BYTES]
        try:
            return self._aead.decrypt(nonce, sealed[1 + _NONCE_BYTES :], context.encode())
        except InvalidTag as exc:
            raise MasterKeyError("stored secret does not open with this master key") from exc

    def seal_text(self, plaintext: bytes, context: str) -> str:
        return _TEXT_PREFIX + base64.b64encode(self.seal(plaintext, context)).decode()

    def open_text(self, sealed: str, context: str) -> bytes:
        if not sealed.startswith(_TEXT_PREFIX):
            raise MasterKeyError("stored secret has an unknown format")
        return self.open(base64.b64decode(sealed[len(_TEXT_PREFIX) :]), context)


def load_master_key(settings: Settings) -> bytes:
    """The configured key, else the key file in the data directory, created on first use."""
    if settings.master_key is not None:
        return _decode_key(settings.master_key.get_secret_value(), "PUSH_SERVER_MASTER_KEY")

    path = settings.data_dir / MASTER_KEY_FILE
    if path.exists():
        return _decode_key(path.read_text().strip(), str(path))

    key = os.urandom(32)
    _write_private(path, base64.b64encode(key).decode() + "\n")
    log.warning(
        "master key generated path=%s: back it up, and give every process sharing this "
        "database the same key through PUSH_SERVER_MASTER_KEY",
        path,
    )
    return key


def _decode_key(encoded: str, source: str) -> bytes:
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MasterKeyError(f"{source} is not valid base64") from exc
    if len(key) != 32:
        raise MasterKeyError(f"{source} must decode to 32 bytes, not {len(key)}")
    return key


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
