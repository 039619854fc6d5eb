"""One sender per provider and application: renders a notification once, sends it per device."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from pushserver.delivery import outcomes
from pushserver.delivery.auth import (
    ApnsToken,
    AuthorizationError,
    GoogleAccessToken,
    HuaweiAccessToken,
)
from pushserver.delivery.outcomes import Outcome, Verdict
from pushserver.delivery.payloads import (
    APNS_MAX_PAYLOAD_BYTES,
    Notification,
    TokenTemplate,
    apns_headers,
    apns_payload,
    fcm_template,
    hms_template,
)
from pushserver.delivery.transport import Pool, TransportError


@dataclass(frozen=True, slots=True)
class Device:
    """Where one message goes: the row it is logged under and the token it is sent to."""

    message_id: int
    token: str
    environment: str | None = None


class PayloadTooLarge(Exception):
    pass


class Sender(Protocol):
    platform: str

    def prepare(self, notification: Notification, now: datetime) -> object: ...

    async def send(self, prepared: object, device: Device) -> Outcome: ...


def apns_id(message_id: int) -> str:
    """A stable apns-id per message, so a resend is recognisable as the same notification."""
    return str(uuid.UUID(int=message_id & ((1 << 128) - 1)))


@dataclass(frozen=True, slots=True)
class ApnsPrepared:
    payload: bytes
    headers: dict[str, str]


class ApnsSender:
    platform = "ios"

    def __init__(
        self,
        token: ApnsToken,
        topic: str,
        environment: str | None,
        pools: dict[str, Pool],
        base_urls: dict[str, str],
    ) -> None:
        self._token = token
        self._topic = topic
        self._environment = environment
        self._pools = pools
        self._base_urls = base_urls

    def prepare(self, notification: Notification, now: datetime) -> ApnsPrepared:
        payload = apns_payload(notification)
        if len(payload) > APNS_MAX_PAYLOAD_BYTES:
            raise PayloadTooLarge(
                f"the APNs payload is {len(payload)} bytes, over {APNS_MAX_PAYLOAD_BYTES}"
            )
        return ApnsPrepared(payload, apns_headers(notification, self._topic))

    async def send(self, prepared: object, device: Device) -> Outcome:
        assert isinstance(prepared, ApnsPrepared)
        environment = self._environment or device.environment or "production"
        url = f"{self._base_urls[environment]}/3/device/{device.token}"
        pool = self._pools[environment]

        for attempt in range(2):
            jwt = self._token.current()
            headers = prepared.headers | {
                "authorization": f"bearer {jwt}",
                "apns-id": apns_id(device.message_id),
            }
            try:
                response = await pool.post(url, headers, prepared.payload)
            except TransportError as exc:
                return Outcome(Verdict.RETRY, f"APNs unreachable: {exc}")
            outcome = outcomes.apns(response.status, response.body, response.retry_after)
            if outcome.verdict is not Verdict.REAUTHORIZE:
                return outcome
            self._token.renew(jwt)
            if attempt == 1:
                return Outcome(Verdict.RETRY, outcome.error)
        raise AssertionError("unreachable")


class _OAuthSender:
    """Shared by FCM and HMS: a bearer access token, renewed once when refused."""

    platform = ""

    def __init__(self, pool: Pool, url: str, access: GoogleAccessToken | HuaweiAccessToken):
        self._pool = pool
        self._url = url
        self._access = access

    def _classify(self, status: int, body: bytes, retry_after: str | None) -> Outcome:
        raise NotImplementedError

    async def send(self, prepared: object, device: Device) -> Outcome:
        assert isinstance(prepared, TokenTemplate)
        body = prepared.render(device.token)
        for attempt in range(2):
            try:
                access = await self._access.get()
            except AuthorizationError as exc:
                return Outcome(Verdict.FAILED, str(exc), credential_problem=True)
            except TransportError as exc:
                return Outcome(Verdict.RETRY, f"token endpoint unreachable: {exc}")
            headers = {"authorization": f"Bearer {access}", "content-type": "application/json"}
            try:
                response = await self._pool.post(self._url, headers, body)
            except TransportError as exc:
                return Outcome(Verdict.RETRY, f"{self.platform} provider unreachable: {exc}")
            outcome = self._classify(response.status, response.body, response.retry_after)
            if outcome.verdict is not Verdict.REAUTHORIZE:
                return outcome
            self._access.invalidate(access)
            if attempt == 1:
                return Outcome(Verdict.RETRY, outcome.error)
        raise AssertionError("unreachable")


class FcmSender(_OAuthSender):
    platform = "android"

    def prepare(self, notification: Notification, now: datetime) -> TokenTemplate:
        return fcm_template(notification, now)

    def _classify(self, status: int, body: bytes, retry_after: str | None) -> Outcome:
        return outcomes.fcm(status, body, retry_after)


class HmsSender(_OAuthSender):
    platform = "huawei"

    def prepare(self, notification: Notification, now: datetime) -> TokenTemplate:
        return hms_template(notification, now)

    def _classify(self, status: int, body: bytes, retry_after: str | None) -> Outcome:
        return outcomes.hms(status, body, retry_after)
