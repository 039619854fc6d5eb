"""End-to-end encrypted messages: a generic visible text, the body sealed for each device.

Until it is sealed for a device, such a message's body rests in ``push_message`` sealed under
the master key, so its clear text reaches neither the database nor the database's logs.
"""

from __future__ import annotations

import base64
import binascii
import json

from pushserver.delivery.jobs import Job, SealedDeviceKey
from pushserver.delivery.payloads import Notification
from pushserver.devices.service import key_context
from pushserver.powerauth import e2ee
from pushserver.security.secretbox import MasterKeyError, SecretBox

NO_DEVICE_KEY = "the device has no end-to-end encryption key; nothing was sent"

# Activation ids are at most this long; the size check seals for the longest.
_LONGEST_ACTIVATION_ID = "0" * 37


def body_context(activation_id: str) -> str:
    return f"push_message.message_body:{activation_id}"


class CannotSeal(Exception):
    """The message must not go to this device; the text says why."""


class EncryptedMessages:
    def __init__(self, box: SecretBox, title: str, body: str) -> None:
        self._box = box
        self._title = title
        self._body = body

    def store(self, body: str, activation_id: str) -> str:
        """The body as ``push_message`` keeps it for a device of the activation."""
        return self._box.seal_text(body.encode(), body_context(activation_id))

    def for_device(self, job: Job) -> Notification:
        """The notification as the job's device receives it."""
        device_key = job.device_key
        if device_key is None:
            raise CannotSeal(NO_DEVICE_KEY)
        activation_id = device_key.activation_id
        try:
            plaintext = self._box.open_text(job.body, body_context(activation_id))
        except MasterKeyError as exc:
            raise CannotSeal(f"the stored message cannot be opened: {exc}") from exc
        key, index = self._open_key(device_key)

        notification = Notification.from_body(
            json.loads(plaintext), silent=job.silent, high_priority=job.priority != "NORMAL"
        )
        sealed = e2ee.seal(key, index, activation_id, plaintext)
        return notification.concealed(self._title, self._body, sealed)

    def _open_key(self, device_key: SealedDeviceKey) -> tuple[bytes, bytes]:
        activation_id = device_key.activation_id
        try:
            key = self._box.open_text(device_key.key, key_context("encryption_key", activation_id))
            index = self._box.open_text(
                device_key.index, key_context("encryption_key_index", activation_id)
            )
            # Registration stores the base64 the device sent, checked to be 16 bytes.
            return base64.b64decode(key, validate=True), base64.b64decode(index, validate=True)
        except (MasterKeyError, binascii.Error) as exc:
            raise CannotSeal(
                f"the device's end-to-end encryption key cannot be opened: {exc}"
            ) from exc


def widest_form(notification: Notification, plaintext: str, title: str, body: str) -> Notification:
    """The message as sealed for any device, at its largest: to check its size before sending."""
    sealed = e2ee.seal(bytes(16), bytes(16), _LONGEST_ACTIVATION_ID, plaintext.encode())
    return notification.concealed(title, body, sealed)
