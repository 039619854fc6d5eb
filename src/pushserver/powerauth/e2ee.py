"""PowerAuth 2.0 end-to-end encryption of a push message for one device ("E2EE-P").

The device and PowerAuth Server share KEY_TRANSPORT; the device gives the push server only
KEY_TRANSPORT_PARTIAL, derived from it with a SESSION_INDEX, so the push server can seal
messages for the device without being able to derive any other key of the activation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
from collections.abc import Callable

from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

KEY_BYTES = 16
INDEX_BYTES = 16

RandomBytes = Callable[[int], bytes]


def kdf_internal(key: bytes, index: bytes) -> bytes:
    """HMAC-SHA256 keyed by ``index`` over ``key``, folded to 16 bytes by XOR of its halves."""
    digest = hmac.new(index, key, hashlib.sha256).digest()
    return bytes(a ^ b for a, b in zip(digest[:KEY_BYTES], digest[KEY_BYTES:], strict=True))


def seal(
    key_transport_partial: bytes,
    session_index: bytes,
    activation_id: str,
    plaintext: bytes,
    random_bytes: RandomBytes = os.urandom,
) -> dict[str, str]:
    """The ``encrypted`` extra the device opens: indexes, nonce, MAC and data, base64."""
    if len(key_transport_partial) != KEY_BYTES or len(session_index) != INDEX_BYTES:
        raise ValueError("the device key and its index must be 16 bytes each")
    ad_hoc_index, mac_index, nonce = _fresh_values(session_index, random_bytes)

    key_enc = kdf_internal(key_transport_partial, ad_hoc_index)
    key_mac = kdf_internal(key_transport_partial, mac_index)
    padder = padding.PKCS7(algorithms.AES.block_size).padder()
    padded = padder.update(plaintext) + padder.finalize()
    encryptor = Cipher(algorithms.AES(key_enc), modes.CBC(nonce)).encryptor()
    encrypted_data = encryptor.update(padded) + encryptor.finalize()
    mac = hmac.new(key_mac, encrypted_data, hashlib.sha256).digest()

    return {
        "activationId": activation_id,
        "sessionIndex": _b64(session_index),
        "adHocIndex": _b64(ad_hoc_index),
        "macIndex": _b64(mac_index),
        "nonce": _b64(nonce),
        "mac": _b64(mac),
        "encryptedData": _b64(encrypted_data),
    }


def _fresh_values(session_index: bytes, random_bytes: RandomBytes) -> tuple[bytes, bytes, bytes]:
    """AD_HOC_INDEX, MAC_INDEX and NONCE, drawn until they and SESSION_INDEX all differ.

    Two equal indexes would derive one key for two purposes, which the scheme forbids.
    """
    while True:
        values = (random_bytes(INDEX_BYTES), random_bytes(INDEX_BYTES), random_bytes(INDEX_BYTES))
        if len({session_index, *values}) == 4:
            return values


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
