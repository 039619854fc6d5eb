"""What a provider's answer means for the message and the device, per the providers' tables."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import Enum
from typing import Any


class Verdict(Enum):
    SENT = "sent"
    RETRY = "retry"  # transient: try again later, with backoff
    FAILED = "failed"  # final for this message; the device stays
    DEAD_TOKEN = "dead_token"  # final, and the token is dead for this app: delete the device
    REAUTHORIZE = "reauthorize"  # our provider token was refused as expired: renew it and retry


@dataclass(frozen=True, slots=True)
class Outcome:
    verdict: Verdict
    error: str | None = None
    retry_after_s: float | None = None
    # For APNs 410: the device is dead only if it did not register again after this moment.
    token_invalid_since: datetime | None = None
    credential_problem: bool = False


SENT = Outcome(Verdict.SENT)


def retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header, in either of its forms: delta-seconds or an HTTP
    date (seconds from now until then, 0 once it has passed)."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
    return seconds if seconds >= 0 else None


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body) if body else {}
    except (UnicodeDecodeError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


# APNs

_APNS_DEAD_TOKEN = frozenset({"BadDeviceToken", "DeviceTokenNotForTopic"})
_APNS_CREDENTIAL = frozenset(
    {
        "InvalidProviderToken",
        "BadCertificate",
        "BadCertificateEnvironment",
        "BadEnvironmentKeyIdInToken",
        "Forbidden",
        "MissingProviderToken",
    }
)


def apns(status: int, body: bytes, retry_after_header: str | None) -> Outcome:
    if status == 200:
        return SENT
    reason = str(_json(body).get("reason") or f"HTTP {status}")
    error = f"APNs {status} {reason}"
    wait_s = retry_after(retry_after_header)

    if status == 400 and reason in _APNS_DEAD_TOKEN:
        return Outcome(Verdict.DEAD_TOKEN, error)
    if status == 403 and reason == "ExpiredProviderToken":
        return Outcome(Verdict.REAUTHORIZE, error)
    if status == 403 and reason in _APNS_CREDENTIAL:
        return Outcome(Verdict.FAILED, error, credential_problem=True)
    if status == 410:
        timestamp = _json(body).get("timestamp")
        since = None
        if isinstance(timestamp, int | float) and timestamp > 0:
            since = datetime.fromtimestamp(timestamp / 1000, UTC)
        return Outcome(Verdict.DEAD_TOKEN, error, token_invalid_since=since)
    if status == 429 or status >= 500:
        # TooManyRequests, TooManyProviderTokenUpdates, InternalServerError, ServiceUnavailable,
        # Shutdown: all pass with time.
        return Outcome(Verdict.RETRY, error, wait_s)
    # Every other 4xx is a request the server will never accept: a bug or a configuration error.
    return Outcome(Verdict.FAILED, error, credential_problem=status == 403)


# FCM


def _fcm_error(body: bytes) -> tuple[str | None, str, str]:
    error = _json(body).get("error")
    if not isinstance(error, dict):
        return None, "", ""
    code = None
    for detail in error.get("details") or []:
        if isinstance(detail, dict) and str(detail.get("@type", "")).endswith(".FcmError"):
            code = detail.get("errorCode")
    return code, str(error.get("status") or ""), str(error.get("message") or "")


# FCM's INVALID_ARGUMENT covers any bad field; only this wording is about the token itself:
# "The registration token is not a valid FCM registration token", "Invalid registration token".
_INVALID_TOKEN = re.compile(
    r"registration token is not a valid|invalid (fcm )?registration token", re.IGNORECASE
)


def fcm(status: int, body: bytes, retry_after_header: str | None) -> Outcome:
    if status == 200:
        return SENT
    code, google_status, message = _fcm_error(body)
    error = f"FCM {status} {code or google_status or 'error'}: {message}".rstrip(": ")
    wait_s = retry_after(retry_after_header)

    if code in ("UNREGISTERED", "SENDER_ID_MISMATCH"):
        return Outcome(Verdict.DEAD_TOKEN, error)
    if code is None and status == 404:
        # Not an answer about the token (that carries UNREGISTERED) but about the project or
        # the URL: a configuration problem, and the devices are kept.
        return Outcome(Verdict.FAILED, error, credential_problem=True)
    if code == "INVALID_ARGUMENT" or (code is None and status == 400):
        if _INVALID_TOKEN.search(message):
            return Outcome(Verdict.DEAD_TOKEN, error)
        return Outcome(Verdict.FAILED, error)
    if code == "THIRD_PARTY_AUTH_ERROR":
        return Outcome(Verdict.FAILED, error, credential_problem=True)
    if status == 401:
        return Outcome(Verdict.REAUTHORIZE, error)
    if status == 403:
        return Outcome(Verdict.FAILED, error, credential_problem=True)
    if status == 429 or status >= 500 or code in ("QUOTA_EXCEEDED", "UNAVAILABLE", "INTERNAL"):
        return Outcome(Verdict.RETRY, error, wait_s)
    return Outcome(Verdict.FAILED, error)


# HMS

HMS_SUCCESS = "80000000"
HMS_PARTIAL = "80100000"
HMS_ALL_INVALID = "80300007"
_HMS_REAUTHORIZE = frozenset({"80200003", "80200001"})
_HMS_RETRY = frozenset({"81000001"})


def hms(status: int, body: bytes, retry_after_header: str | None) -> Outcome:
    document = _json(body)
    code = str(document.get("code") or "")
    error = f"HMS {status} {code or 'error'}: {document.get('msg') or ''}".rstrip(": ")
    wait_s = retry_after(retry_after_header)

    if status == 200 and code == HMS_SUCCESS:
        return SENT
    if code == HMS_ALL_INVALID:
        return Outcome(Verdict.DEAD_TOKEN, error)
    if code == HMS_PARTIAL:
        # One token per request, so the detail in `msg` says whether it was ours that failed.
        detail = _json(str(document.get("msg") or "").encode())
        if detail.get("illegal_tokens"):
            return Outcome(Verdict.DEAD_TOKEN, error)
        if isinstance(detail.get("success"), int) and detail["success"] > 0:
            return SENT
        return Outcome(Verdict.FAILED, error)
    if code in _HMS_REAUTHORIZE or status == 401:
        return Outcome(Verdict.REAUTHORIZE, error)
    if code in _HMS_RETRY or status == 429 or status >= 500:
        return Outcome(Verdict.RETRY, error, wait_s)
    if status == 403:
        return Outcome(Verdict.FAILED, error, credential_problem=True)
    return Outcome(Verdict.FAILED, error)
