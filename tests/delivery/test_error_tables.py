"""Every row of the providers' error tables (shared docs/providers.md), through a SYNCHRONOUS
send against the fakes: the message's status and last error, whether a retry is planned and
after how long, and whether the device is still registered."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from sqlalchemy import update

from pushserver.app import create_app
from pushserver.db.models import PushDevice
from pushserver.delivery.jobs import NO_ANSWER
from pushserver.messages.schemas import PENDING, SENT
from tests.delivery.support import SEND, Device, Json, Push, counts, message, parse_time
from tests.fakes.apns import ApnsFake
from tests.fakes.google import INVALID_REGISTRATION_TOKEN, GoogleFake
from tests.fakes.hms import HmsFake

PLATFORMS = ("ios", "android", "huawei")


@dataclass(frozen=True)
class Sent:
    """One message to one device: the API's counts for its platform and the message's detail."""

    device: Device
    counts: Json
    detail: Json
    before: datetime
    after: datetime


async def one_device(push: Push, platform: str) -> tuple[int, Device]:
    app_id = await push.create_app()
    return app_id, await push.register(app_id, platform)


async def send_to(push: Push, app_id: int, device: Device, body: Json | None = None) -> Sent:
    before = datetime.now(UTC)
    result = await push.send_ok(app_id, message(body=body) if body else message())
    after = datetime.now(UTC)
    others = [p for p in PLATFORMS if p != device.platform]
    assert all(result[p] == counts() for p in others), result
    detail = await push.detail((await push.row_for(device)).id)
    return Sent(device, result[device.platform], detail, before, after)


async def answered(
    push: Push,
    platform: str,
    answer: str,
    *,
    retry_after: int | None = None,
    times: int | None = None,
    message: str | None = None,
) -> Sent:
    """A new device on ``platform``, its provider programmed with ``answer``, sent to once."""
    app_id, device = await one_device(push, platform)
    push.program(device, answer, retry_after=retry_after, times=times, message=message)
    return await send_to(push, app_id, device)


async def assert_final(push: Push, sent: Sent, error: str, *, device_deleted: bool) -> None:
    """FAILED at the first answer, never tried again; the device deleted or kept."""
    assert sent.counts == counts(failed=1)
    assert sent.detail["status"] == "FAILED"
    assert sent.detail["lastError"].startswith(error), sent.detail["lastError"]
    assert sent.detail["attempts"] == 1
    assert "nextAttemptAt" not in sent.detail
    assert await push.device_exists(sent.device) is not device_deleted
    await push.make_due()
    assert await push.run_worker() == 0
    assert len(push.requests_for(sent.device)) == 1


def first_wait(push: Push, retry_after: float | None) -> tuple[float, float]:
    """The span the first retry falls in: the upper half of the base delay (jitter), or the
    provider's Retry-After when that is longer."""
    base = push.settings.retry_base_s
    if retry_after is not None and retry_after >= base:
        return retry_after, retry_after
    return base / 2, base


async def assert_retry_planned(
    push: Push, sent: Sent, error: str, wait: tuple[float, float]
) -> datetime:
    """PENDING with a retry planned ``wait`` seconds after the send; the device kept."""
    assert sent.counts == counts(pending=1)
    assert sent.detail["status"] == "PENDING"
    assert sent.detail["lastError"].startswith(error), sent.detail["lastError"]
    assert "timestampSent" not in sent.detail
    due = parse_time(sent.detail["nextAttemptAt"])
    low, high = wait
    assert sent.before + timedelta(seconds=low) <= due <= sent.after + timedelta(seconds=high)
    assert await push.device_exists(sent.device)
    return due


async def retry_until_settled(push: Push, passes: int = 5) -> int:
    """Worker passes, each after bringing retries forward, until nothing is pending."""
    for done in range(passes):
        if all(row.status != PENDING for row in await push.rows()):
            return done
        await push.make_due()
        await push.run_worker()
    assert all(row.status != PENDING for row in await push.rows())
    return passes


async def assert_sent_on_retry(push: Push, sent: Sent, attempts: int = 2) -> None:
    await push.make_due()
    assert await push.run_worker() == 1
    detail = await push.detail(sent.detail["id"])
    assert detail["status"] == "SENT" and detail["attempts"] == attempts
    assert "lastError" not in detail and "nextAttemptAt" not in detail
    assert push.requests_for(sent.device)[-1].status == 200


def warned_about(caplog: pytest.LogCaptureFixture, app_id: int, platform: str) -> bool:
    return any(
        record.levelname == "WARNING"
        and f"app_id={app_id}" in record.getMessage()
        and f"platform={platform}" in record.getMessage()
        for record in caplog.records
    )


# APNs

APNS_REQUEST_ERRORS = [
    "BadCollapseId",
    "BadExpirationDate",
    "BadMessageId",
    "BadPriority",
    "BadTopic",
    "DuplicateHeaders",
    "InvalidPushType",
    "MissingTopic",
    "PayloadEmpty",
    "TopicDisallowed",
]
APNS_CREDENTIAL_ERRORS = [
    "InvalidProviderToken",
    "BadCertificate",
    "BadEnvironmentKeyIdInToken",
    "Forbidden",
    "MissingProviderToken",
]


@pytest.mark.parametrize("reason", ["BadDeviceToken", "DeviceTokenNotForTopic"])
async def test_apns_400_dead_token_deletes_the_device(push: Push, reason: str) -> None:
    sent = await answered(push, "ios", reason)
    await assert_final(push, sent, f"APNs 400 {reason}", device_deleted=True)


@pytest.mark.parametrize("reason", APNS_REQUEST_ERRORS)
async def test_apns_400_request_error_fails_and_keeps_the_device(push: Push, reason: str) -> None:
    sent = await answered(push, "ios", reason)
    await assert_final(push, sent, f"APNs 400 {reason}", device_deleted=False)


@pytest.mark.parametrize("reason", APNS_CREDENTIAL_ERRORS)
async def test_apns_403_credential_error_fails_keeps_the_device_and_warns(
    push: Push, captured_logs: pytest.LogCaptureFixture, reason: str
) -> None:
    sent = await answered(push, "ios", reason)
    await assert_final(push, sent, f"APNs 403 {reason}", device_deleted=False)
    assert warned_about(captured_logs, sent.device.app_id, "ios")


async def test_apns_403_expired_provider_token_is_renewed_and_resent_at_once(
    push: Push,
) -> None:
    sent = await answered(push, "ios", "ExpiredProviderToken", times=1)

    assert sent.counts == counts(sent=1)
    assert sent.detail["status"] == "SENT" and sent.detail["attempts"] == 1
    assert await push.device_exists(sent.device)
    refused, accepted = push.requests_for(sent.device)
    assert (refused.status, refused.answer) == (403, {"reason": "ExpiredProviderToken"})
    assert accepted.status == 200
    assert refused.headers["authorization"] != accepted.headers["authorization"]
    for request in (refused, accepted):
        header, claims = push.apns_jwt(request)
        assert header["kid"] == push.apns_key.key_id and claims["iss"] == push.apns_key.team_id
    # The same notification, resent.
    assert refused.headers["apns-id"] == accepted.headers["apns-id"]
    assert refused.body == accepted.body

    # The new JWT is the one kept for the next messages.
    app_id = sent.device.app_id
    assert (await push.send_ok(app_id, message()))["ios"] == counts(sent=1)
    assert (
        push.requests_for(sent.device)[-1].headers["authorization"]
        == (accepted.headers["authorization"])
    )


async def test_apns_403_expired_provider_token_twice_is_retried_later(push: Push) -> None:
    sent = await answered(push, "ios", "ExpiredProviderToken", times=2)

    await assert_retry_planned(push, sent, "APNs 403 ExpiredProviderToken", first_wait(push, None))
    assert len(push.requests_for(sent.device)) == 2
    await assert_sent_on_retry(push, sent)


@pytest.mark.parametrize("reason", ["Unregistered", "ExpiredToken"])
@pytest.mark.parametrize("invalid_since", ["before-registration", "after-registration"])
async def test_apns_410_deletes_the_device_unless_it_registered_again(
    push: Push, reason: str, invalid_since: str
) -> None:
    app_id, device = await one_device(push, "ios")
    registered = await push.registered_at(device)
    shift = timedelta(seconds=-60 if invalid_since == "before-registration" else 1)
    timestamp_ms = int((registered + shift).timestamp() * 1000)
    push.apns.program(device.token, reason, timestamp=timestamp_ms)

    sent = await send_to(push, app_id, device)

    assert push.requests_for(device)[0].answer == {"reason": reason, "timestamp": timestamp_ms}
    await assert_final(
        push,
        sent,
        f"APNs 410 {reason}",
        device_deleted=invalid_since == "after-registration",
    )


async def test_apns_410_spares_a_device_that_registered_again_since(push: Push) -> None:
    """Registered an hour ago, the token died ten minutes ago, then the phone registered it
    anew: the answer predates the registration, so the device stays."""
    app_id, device = await one_device(push, "ios")
    now = datetime.now(UTC)
    async with push.database.transaction() as session:
        await session.execute(
            update(PushDevice)
            .where(PushDevice.id == device.id)
            .values(timestamp_created=now - timedelta(hours=1))
        )
    invalid_since_ms = int((now - timedelta(minutes=10)).timestamp() * 1000)
    again = await push.register(app_id, "ios", token=device.token)
    assert again.id == device.id
    assert await push.registered_at(device) >= now
    push.apns.program(device.token, "Unregistered", timestamp=invalid_since_ms)

    sent = await send_to(push, app_id, again)

    await assert_final(push, sent, "APNs 410 Unregistered", device_deleted=False)


async def test_apns_413_payload_too_large_fails(push: Push) -> None:
    sent = await answered(push, "ios", "PayloadTooLarge")
    await assert_final(push, sent, "APNs 413 PayloadTooLarge", device_deleted=False)


# FCM


@pytest.mark.parametrize(
    ("error", "text", "status"),
    [
        ("UNREGISTERED", None, 404),
        ("SENDER_ID_MISMATCH", None, 403),
        ("INVALID_ARGUMENT", INVALID_REGISTRATION_TOKEN, 400),
    ],
    ids=["UNREGISTERED", "SENDER_ID_MISMATCH", "INVALID_ARGUMENT-registration-token"],
)
async def test_fcm_dead_token_deletes_the_device(
    push: Push, error: str, text: str | None, status: int
) -> None:
    sent = await answered(push, "android", error, message=text)
    await assert_final(push, sent, f"FCM {status} {error}", device_deleted=True)


async def test_fcm_400_invalid_argument_fails_and_keeps_the_device(push: Push) -> None:
    sent = await answered(push, "android", "INVALID_ARGUMENT")
    await assert_final(push, sent, "FCM 400 INVALID_ARGUMENT", device_deleted=False)


async def test_fcm_401_third_party_auth_error_fails_keeps_the_device_and_warns(
    push: Push, captured_logs: pytest.LogCaptureFixture
) -> None:
    sent = await answered(push, "android", "THIRD_PARTY_AUTH_ERROR")
    await assert_final(push, sent, "FCM 401 THIRD_PARTY_AUTH_ERROR", device_deleted=False)
    assert warned_about(captured_logs, sent.device.app_id, "android")


@pytest.mark.parametrize("cause", ["programmed", "revoked"])
async def test_fcm_401_without_fcm_error_refreshes_the_access_token_once(
    push: Push, cause: str
) -> None:
    app_id, device = await one_device(push, "android")
    if cause == "revoked":
        # A token the server holds from an earlier send, then refused as Google would.
        await push.send_ok(app_id, message())
        push.google.expire_access_tokens()
    else:
        push.program(device, "UNAUTHENTICATED", times=1)
    # A refusal of the access token is not attributed to a device token: read every send.
    earlier = len(push.fcm_requests())

    sent = await send_to(push, app_id, device)

    assert sent.counts == counts(sent=1)
    assert sent.detail["status"] == "SENT" and sent.detail["attempts"] == 1
    refused, accepted = push.fcm_requests()[earlier:]
    assert refused.status == 401 and accepted.status == 200
    assert accepted.token == device.token
    assert refused.headers["authorization"] != accepted.headers["authorization"]
    assert push.google.stats()["tokens_issued"] == 2
    assert len(push.google.requests("/token")) == 2


async def test_fcm_401_without_fcm_error_twice_is_retried_later(push: Push) -> None:
    sent = await answered(push, "android", "UNAUTHENTICATED", times=2)

    await assert_retry_planned(push, sent, "FCM 401 UNAUTHENTICATED", first_wait(push, None))
    assert len(push.requests_for(sent.device)) == 2
    assert push.google.stats()["tokens_issued"] == 2
    await assert_sent_on_retry(push, sent)


# HMS


@pytest.mark.parametrize("code", ["80300007", "80100000"])
async def test_hms_invalid_token_deletes_the_device(push: Push, code: str) -> None:
    sent = await answered(push, "huawei", code)
    status = 400 if code == "80300007" else 200
    await assert_final(push, sent, f"HMS {status} {code}", device_deleted=True)


async def test_hms_80100000_partial_success_for_our_token_is_sent(push: Push) -> None:
    """One token per request: a partial success that names no illegal token was ours."""
    app_id, device = await one_device(push, "huawei")
    detail = '{"success": 1, "failure": 0, "illegal_tokens": []}'
    push.hms.program(device.token, "80100000", msg=detail)

    sent = await send_to(push, app_id, device)

    assert sent.counts == counts(sent=1)
    assert sent.detail["status"] == "SENT"
    assert await push.device_exists(device)
    assert push.requests_for(device)[0].answer["code"] == "80100000"


@pytest.mark.parametrize("cause", ["programmed", "revoked"])
async def test_hms_80200003_refreshes_the_access_token_and_retries(push: Push, cause: str) -> None:
    app_id, device = await one_device(push, "huawei")
    if cause == "revoked":
        await push.send_ok(app_id, message())
        push.hms.expire_access_tokens()
    else:
        push.program(device, "80200003", times=1)
    earlier = len(push.hms_requests())

    sent = await send_to(push, app_id, device)

    assert sent.counts == counts(sent=1)
    assert sent.detail["status"] == "SENT" and sent.detail["attempts"] == 1
    refused, accepted = push.hms_requests()[earlier:]
    assert refused.answer["code"] == "80200003" and accepted.answer["code"] == "80000000"
    assert accepted.token == device.token
    assert refused.headers["authorization"] != accepted.headers["authorization"]
    assert push.hms.stats()["tokens_issued"] == 2


# Token endpoints refusing the credentials


@pytest.mark.parametrize("platform", ["android", "huawei"])
async def test_token_endpoint_refusing_credentials_fails_and_keeps_the_device(
    push: Push, captured_logs: pytest.LogCaptureFixture, platform: str
) -> None:
    app_id = await push.create_app(hms_secret="not-the-secret")
    device = await push.register(app_id, platform)
    if platform == "android":
        push.google.token_fail("invalid_grant", "Invalid JWT Signature.")

    sent = await send_to(push, app_id, device)

    assert sent.counts == counts(failed=1)
    assert sent.detail["status"] == "FAILED"
    assert sent.detail["lastError"].startswith("token endpoint refused: HTTP 400")
    assert "nextAttemptAt" not in sent.detail
    assert await push.device_exists(device)
    assert push.requests_for(device) == []
    assert warned_about(captured_logs, app_id, platform)


# Answers that pass with time, on every provider

RETRYABLE = [
    ("ios", "TooManyRequests", None, "APNs 429 TooManyRequests"),
    ("ios", "TooManyRequests", 30, "APNs 429 TooManyRequests"),
    ("ios", "InternalServerError", None, "APNs 500 InternalServerError"),
    ("ios", "ServiceUnavailable", 120, "APNs 503 ServiceUnavailable"),
    ("ios", "Shutdown", None, "APNs 503 Shutdown"),
    ("android", "QUOTA_EXCEEDED", 60, "FCM 429 QUOTA_EXCEEDED"),
    ("android", "QUOTA_EXCEEDED", None, "FCM 429 QUOTA_EXCEEDED"),
    ("android", "UNAVAILABLE", None, "FCM 503 UNAVAILABLE"),
    ("android", "UNAVAILABLE", 45, "FCM 503 UNAVAILABLE"),
    ("android", "INTERNAL", None, "FCM 500 INTERNAL"),
    ("android", "INTERNAL", 20, "FCM 500 INTERNAL"),
    ("huawei", "81000001", None, "HMS 500 81000001"),
    ("huawei", "503", None, "HMS 503 503"),
    ("huawei", "503", 30, "HMS 503 503"),
]


@pytest.mark.parametrize(
    ("platform", "answer", "retry_after", "error"),
    RETRYABLE,
    ids=[f"{p}-{a}-{r or 'no'}-retry-after" for p, a, r, _ in RETRYABLE],
)
async def test_retryable_answer_plans_a_retry_then_sends(
    push: Push, platform: str, answer: str, retry_after: int | None, error: str
) -> None:
    sent = await answered(push, platform, answer, retry_after=retry_after, times=1)

    await assert_retry_planned(push, sent, error, first_wait(push, retry_after))
    assert len(push.requests_for(sent.device)) == 1
    # Not due yet: a worker leaves it alone.
    assert await push.run_worker() == 0
    await assert_sent_on_retry(push, sent)


async def test_backoff_doubles_with_each_attempt(push: Push) -> None:
    app_id, device = await one_device(push, "ios")
    push.program(device, "ServiceUnavailable", times=3)
    base = push.settings.retry_base_s

    sent = await send_to(push, app_id, device)
    await assert_retry_planned(push, sent, "APNs 503", (base / 2, base))
    for attempt in (2, 3):
        await push.make_due()
        before = datetime.now(UTC)
        assert await push.run_worker() == 1
        after = datetime.now(UTC)
        detail = await push.detail(sent.detail["id"])
        assert detail["status"] == "PENDING" and detail["attempts"] == attempt
        ceiling = base * 2 ** (attempt - 1)
        due = parse_time(detail["nextAttemptAt"])
        assert before + timedelta(seconds=ceiling / 2) <= due <= after + timedelta(seconds=ceiling)
    await assert_sent_on_retry(push, sent, attempts=4)


async def test_retries_stop_at_the_attempt_limit(push: Push) -> None:
    app_id, device = await one_device(push, "huawei")
    push.program(device, "81000001")
    limit = push.settings.retry_max_attempts

    await send_to(push, app_id, device)
    await retry_until_settled(push, passes=limit)

    [row] = await push.rows()
    assert row.status == -1 and row.attempts == limit
    assert row.last_error is not None
    assert row.last_error.startswith(f"gave up after {limit} attempts; last: HMS 500 81000001")
    assert len(push.requests_for(device)) == limit
    assert await push.device_exists(device)


async def test_no_retry_is_planned_past_valid_until(push: Push) -> None:
    app_id, device = await one_device(push, "ios")
    push.program(device, "ServiceUnavailable", retry_after=60)
    valid_until = (datetime.now(UTC) + timedelta(seconds=30)).isoformat()

    sent = await send_to(push, app_id, device, {"title": "soon stale", "validUntil": valid_until})

    assert sent.counts == counts(failed=1)
    assert sent.detail["status"] == "FAILED"
    assert sent.detail["lastError"] == (
        "validUntil passes before the next attempt; last: APNs 503 ServiceUnavailable"
    )
    assert await push.device_exists(device)


async def test_retry_after_as_an_http_date_is_honoured(push: Push) -> None:
    app_id, device = await one_device(push, "android")
    when = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=40)
    push.program(device, "UNAVAILABLE", retry_after=format_datetime(when, usegmt=True), times=1)

    sent = await send_to(push, app_id, device)

    due = await assert_retry_planned(push, sent, "FCM 503 UNAVAILABLE", (30, 41))
    assert abs((due - when).total_seconds()) < 1.5
    await assert_sent_on_retry(push, sent)


async def test_an_fcm_404_about_the_url_keeps_the_devices(
    push: Push, caplog: pytest.LogCaptureFixture
) -> None:
    """Only UNREGISTERED says a token is dead; a 404 without it (a wrong FCM URL or project) is
    the operator's to fix, and deleting every Android device would lose them all."""
    wrong = push.settings.fcm_url.rstrip("/") + "/elsewhere"
    server = create_app(push.settings.model_copy(update={"fcm_url": wrong}))
    app_id, device = await one_device(push, "android")

    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.post(
                SEND,
                headers=push.sender,
                json={"requestObject": {"appId": app_id, "message": message()}},
            )

    assert response.status_code == 200, response.text
    assert response.json()["responseObject"]["android"] == counts(failed=1)
    detail = await push.detail((await push.row_for(device)).id)
    assert detail["status"] == "FAILED"
    assert detail["lastError"].startswith("FCM 404 NOT_FOUND"), detail["lastError"]
    assert await push.device_exists(device)
    assert warned_about(caplog, app_id, "android")


# Connections that fail under the sender


def fake_of(push: Push, platform: str) -> ApnsFake | GoogleFake | HmsFake:
    fakes: dict[str, ApnsFake | GoogleFake | HmsFake] = {
        "ios": push.apns,
        "android": push.google,
        "huawei": push.hms,
    }
    return fakes[platform]


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_goaway_streams_are_resent_on_a_new_connection(push: Push, platform: str) -> None:
    app_id = await push.create_app()
    devices = [await push.register(app_id, platform) for _ in range(9)]
    fake = fake_of(push, platform)
    # Held answers let several requests share the first connection when it goes away.
    fake.delay(0.1)
    fake.goaway_after(2, connections=1)

    result = await push.send_ok(app_id, message())

    assert result[platform] == counts(sent=9)
    stats = fake.stats()
    assert stats["goaways"] == 1 and stats["ignored_after_goaway"] >= 1
    fake.assert_delivered_once(device.token for device in devices)
    assert [(row.status, row.attempts) for row in await push.rows()] == [(SENT, 1)] * 9


@pytest.mark.parametrize("platform", PLATFORMS)
async def test_dropped_connection_is_retried_until_sent(push: Push, platform: str) -> None:
    app_id = await push.create_app()
    devices = [await push.register(app_id, platform) for _ in range(6)]
    fake = fake_of(push, platform)
    fake.drop_after(1, connections=1)

    result = await push.send_ok(app_id, message())

    # What was in flight when the connection died got no answer: retried later.
    assert result[platform]["pending"] >= 1
    assert fake.stats()["drops"] == 1
    unanswered = [row for row in await push.rows() if row.status == PENDING]
    assert all("unreachable" in (row.last_error or "") for row in unanswered)
    assert await retry_until_settled(push) >= 1
    rows = await push.rows()
    assert [row.status for row in rows] == [SENT] * 6
    assert {row.id for row in rows if row.attempts == 2} == {row.id for row in unanswered}
    fake.assert_delivered_once(device.token for device in devices)


# A provider that never answers


async def test_synchronous_send_returns_within_its_timeout_when_providers_hang(
    push: Push,
) -> None:
    timeout_s = 1.0
    server = create_app(push.settings.model_copy(update={"sync_send_timeout_s": timeout_s}))
    app_id, devices = await push.app_with_devices()
    for fake in (push.apns, push.google, push.hms):
        fake.hang()

    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            started = time.monotonic()
            before = datetime.now(UTC)
            response = await client.post(
                SEND,
                headers=push.sender,
                json={"requestObject": {"appId": app_id, "message": message()}},
            )
            after = datetime.now(UTC)
            elapsed = time.monotonic() - started

    assert response.status_code == 200, response.text
    assert timeout_s <= elapsed < timeout_s + 1.0
    assert response.json()["responseObject"] == {
        "mode": "SYNCHRONOUS",
        **{platform: counts(pending=1) for platform in PLATFORMS},
    }
    base = push.settings.retry_base_s
    for device in devices.values():
        detail = await push.detail((await push.row_for(device)).id)
        assert detail["status"] == "PENDING" and detail["lastError"] == NO_ANSWER
        due = parse_time(detail["nextAttemptAt"])
        assert before + timedelta(seconds=base / 2) <= due <= after + timedelta(seconds=base)

    for fake in (push.apns, push.google, push.hms):
        fake.hang(False)
    await push.make_due()
    assert await push.run_worker() == 3
    assert [(row.status, row.attempts) for row in await push.rows()] == [(SENT, 2)] * 3
