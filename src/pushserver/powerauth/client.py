"""PowerAuth Server's REST API: the status and user of an activation."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import SecretStr
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError

from pushserver.devices.schemas import ActivationStatus
from pushserver.errors import PowerAuthUnavailable
from pushserver.settings import Settings

STATUS_PATH = "/rest/v3/activation/status"

# A registration may name up to 100 activations; a few calls at a time spare PowerAuth Server.
_CONCURRENT_CALLS = 8
# PowerAuth Server's error messages can be long; the client only needs their start.
_MESSAGE_CHARS = 200
# push_device.user_id holds this many.
_USER_CHARS = 255


@dataclass(frozen=True, slots=True)
class ActivationState:
    activation_id: str
    status: ActivationStatus
    # PowerAuth Server answers an activation it does not know as REMOVED, without a user.
    user_id: str | None


class PowerAuthClient:
    """One long-lived HTTP client; every failure becomes ``PowerAuthUnavailable``."""

    def __init__(
        self,
        url: str,
        *,
        username: str | None = None,
        password: SecretStr | None = None,
        timeout_s: float = 5.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        self._url = url.rstrip("/") + STATUS_PATH
        self._username = username
        self._password = password
        self._timeout_s = timeout_s
        self._client: Client = (
            ClientBuilder()
            .connect_timeout(timedelta(seconds=connect_timeout_s))
            .timeout(timedelta(seconds=timeout_s))
            .follow_redirects(False)
            .build()
        )
        self._slots = asyncio.Semaphore(_CONCURRENT_CALLS)

    @classmethod
    def from_settings(cls, settings: Settings) -> PowerAuthClient | None:
        if settings.powerauth_url is None:
            return None
        return cls(
            settings.powerauth_url,
            username=settings.powerauth_username,
            password=settings.powerauth_password,
            timeout_s=settings.powerauth_timeout_s,
            connect_timeout_s=settings.powerauth_connect_timeout_s,
        )

    async def activation(self, activation_id: str) -> ActivationState:
        async with self._slots:
            status, body = await self._post({"requestObject": {"activationId": activation_id}})
        return _parse(activation_id, status, body)

    async def activations(self, activation_ids: Sequence[str]) -> list[ActivationState]:
        """Each activation's state, in order; the first failure is raised once all have ended."""
        answers = await asyncio.gather(
            *(self.activation(a) for a in activation_ids), return_exceptions=True
        )
        states = []
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
            states.append(answer)
        return states

    async def _post(self, document: dict[str, Any]) -> tuple[int, bytes]:
        request = self._client.post(self._url).body_json(document)
        if self._username is not None:
            password = self._password.get_secret_value() if self._password else None
            request = request.basic_auth(self._username, password)
        try:
            response = await request.build().send()
            return response.status, bytes(await response.bytes())
        except TimeoutError as exc:
            raise PowerAuthUnavailable(
                f"PowerAuth Server did not answer within {self._timeout_s:g} s"
            ) from exc
        except PyreqwestError as exc:
            raise PowerAuthUnavailable(f"PowerAuth Server could not be reached: {exc}") from exc

    async def close(self) -> None:
        await self._client.close()


def _parse(activation_id: str, http_status: int, body: bytes) -> ActivationState:
    try:
        document = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
    if http_status != 200 or not isinstance(document, dict) or document.get("status") != "OK":
        raise PowerAuthUnavailable(
            f"PowerAuth Server answered an error: HTTP {http_status}{_error_detail(document)}"
        )

    answer = document.get("responseObject")
    if not isinstance(answer, dict):
        raise _malformed("no responseObject")
    if answer.get("activationId", activation_id) != activation_id:
        raise _malformed("the status of another activation")
    named = answer.get("activationStatus")
    try:
        status = ActivationStatus(str(named))
    except ValueError:
        raise _malformed(f"activationStatus {str(named)[:_MESSAGE_CHARS]!r}") from None
    user_id = answer.get("userId")
    if user_id is not None and not (isinstance(user_id, str) and 0 < len(user_id) <= _USER_CHARS):
        raise _malformed(f"a userId that is not a string of 1 to {_USER_CHARS} characters")
    if user_id is None and status is not ActivationStatus.REMOVED:
        raise _malformed(f"no userId for a {status.value} activation")
    return ActivationState(activation_id, status, user_id)


def _malformed(what: str) -> PowerAuthUnavailable:
    return PowerAuthUnavailable(f"PowerAuth Server sent a malformed answer: {what}")


def _error_detail(document: Any) -> str:
    """PowerAuth Server's own error code and message, when its answer carries them."""
    if not isinstance(document, dict):
        return ""
    error = document.get("responseObject")
    if not isinstance(error, dict):
        return f", status {str(document.get('status'))[:20]}"
    code = str(error.get("code", ""))[:_MESSAGE_CHARS]
    message = str(error.get("message", ""))[:_MESSAGE_CHARS]
    return f", {code}: {message}" if code or message else ""
