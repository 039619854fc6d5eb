"""The fakes against real HTTP/2 clients: pyreqwest (hyper) for what a sender sees, and the
``h2`` package for frame-level facts (GOAWAY's last stream id, SETTINGS, dropped sockets)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import re
import socket
import ssl
import string
import time
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hpack
import httpx
import pytest
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError
from pyreqwest.response import Response

from .apns import REASONS, ApnsFake, ApnsKey, device_token
from .google import (
    FCM_ERROR_TYPE,
    INVALID_REGISTRATION_TOKEN,
    JWT_BEARER,
    SCOPE,
    GoogleFake,
    ServiceAccount,
)
from .hms import HmsApp, HmsFake
from .hpackcodec import HpackDecoder
from .process import FakeProcess
from .tls import FakeCA

PAYLOAD = {"aps": {"alert": {"title": "Hi", "body": "there"}, "sound": "default"}, "id": "42"}
TOKEN = device_token(1)


@pytest.fixture
async def http(fake_ca: FakeCA) -> AsyncIterator[Client]:
    """HTTP/2 only, trusting the fakes' CA, as the server's provider client will be."""
    client = (
        ClientBuilder()
        .http2_prior_knowledge()
        .add_root_certificate_pem(fake_ca.ca_pem)
        .timeout(timedelta(seconds=5))
        .build()
    )
    async with client:
        yield client


async def post(
    http: Client,
    url: str,
    *,
    headers: dict[str, str] | list[tuple[str, str]] | None = None,
    body: bytes | dict[str, Any] = b"",
    form: dict[str, str] | None = None,
    timeout: float | None = None,
) -> Response:
    builder = http.post(url).headers(headers or {})
    if form is not None:
        builder = builder.form(form)
    else:
        builder = builder.body_bytes(body if isinstance(body, bytes) else json.dumps(body).encode())
    if timeout is not None:
        builder = builder.timeout(timedelta(seconds=timeout))
    response = await builder.build().send()
    await response.bytes()
    return response


def apns_headers(
    key: ApnsKey, changes: dict[str, str | None] | None = None, **more: str | None
) -> dict[str, str]:
    """Valid APNs headers; ``changes`` (or keywords, ``_`` for ``-``) replace or drop some."""
    headers: dict[str, str | None] = {
        "authorization": f"bearer {key.jwt()}",
        "apns-topic": key.topic,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-expiration": "0",
    }
    overrides = {**(changes or {}), **more}
    headers.update({k.replace("_", "-"): v for k, v in overrides.items()})
    return {k: v for k, v in headers.items() if v is not None}


async def apns_send(
    http: Client,
    fake: ApnsFake,
    key: ApnsKey,
    token: str = TOKEN,
    *,
    body: bytes | dict[str, Any] = PAYLOAD,
    **overrides: str | None,
) -> Response:
    return await post(
        http, f"{fake.url}/3/device/{token}", headers=apns_headers(key, overrides), body=body
    )


async def reason(response: Response) -> str:
    return str((await response.json())["reason"])


# APNs


async def test_apns_success_echoes_apns_id_and_records(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_id = str(uuid.uuid4())
    response = await apns_send(http, apns_fake, fake_apns_key, apns_id=apns_id)
    assert response.status == 200
    assert response.version == "HTTP/2.0"
    assert bytes(await response.bytes()) == b""
    assert response.get_header("apns-id") == apns_id

    generated = await apns_send(http, apns_fake, fake_apns_key, device_token(2))
    assert re.fullmatch(r"[0-9A-F-]{36}", generated.get_header("apns-id") or "")

    first, second = apns_fake.requests()
    assert first.method == "POST" and first.path == f"/3/device/{TOKEN}"
    assert first.headers["apns-topic"] == "com.example.app"
    assert first.headers["apns-id"] == apns_id
    assert first.body == PAYLOAD
    assert (first.status, second.status, first.token) == (200, 200, TOKEN)
    assert apns_fake.counts() == {TOKEN: 1, device_token(2): 1}
    apns_fake.assert_delivered_once([TOKEN, device_token(2)])


@pytest.mark.parametrize(
    ("overrides", "body", "status", "expected"),
    [
        ({"apns_topic": None}, PAYLOAD, 400, "MissingTopic"),
        ({"apns_topic": "com.other.app"}, PAYLOAD, 400, "TopicDisallowed"),
        ({"apns_push_type": None}, PAYLOAD, 400, "InvalidPushType"),
        ({"apns_push_type": "voip"}, PAYLOAD, 400, "InvalidPushType"),
        ({"apns_priority": "1"}, PAYLOAD, 400, "BadPriority"),
        ({"apns_push_type": "background"}, PAYLOAD, 400, "BadPriority"),
        ({"apns_push_type": "background", "apns_priority": None}, PAYLOAD, 400, "BadPriority"),
        ({"apns_expiration": "tomorrow"}, PAYLOAD, 400, "BadExpirationDate"),
        ({"apns_collapse_id": "c" * 65}, PAYLOAD, 400, "BadCollapseId"),
        ({"apns_id": "not-a-uuid"}, PAYLOAD, 400, "BadMessageId"),
        ({"authorization": None}, PAYLOAD, 403, "MissingProviderToken"),
        ({}, b"", 400, "PayloadEmpty"),
        ({}, json.dumps({"aps": {"alert": "x" * 4096}}).encode(), 413, "PayloadTooLarge"),
        ({}, b"not json", 400, "BadPayload"),
        ({}, {"alert": "no aps"}, 400, "BadPayload"),
    ],
)
async def test_apns_header_and_payload_rules(
    http: Client,
    apns_fake: ApnsFake,
    fake_apns_key: ApnsKey,
    overrides: dict[str, str | None],
    body: bytes | dict[str, Any],
    status: int,
    expected: str,
) -> None:
    response = await post(
        http,
        f"{apns_fake.url}/3/device/{TOKEN}",
        headers=apns_headers(fake_apns_key, overrides),
        body=body,
    )
    assert (response.status, await reason(response)) == (status, expected)
    assert response.get_header("apns-id")
    assert apns_fake.counts() == {}
    assert apns_fake.attempts() == {TOKEN: 1}


async def test_apns_accepts_the_limits(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    padding = 4096 - len(json.dumps({"aps": {"alert": ""}}))
    exact = json.dumps({"aps": {"alert": "x" * padding}}).encode()
    assert len(exact) == 4096
    assert (await apns_send(http, apns_fake, fake_apns_key, body=exact)).status == 200
    silent = await apns_send(
        http,
        apns_fake,
        fake_apns_key,
        device_token(2),
        body={"aps": {"content-available": 1}},
        apns_push_type="background",
        apns_priority="5",
        apns_collapse_id="c" * 64,
    )
    assert silent.status == 200


async def test_apns_device_token_rules(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    bad = await apns_send(http, apns_fake, fake_apns_key, "not-hex")
    assert (bad.status, await reason(bad)) == (400, "BadDeviceToken")
    apns_fake.register_device(device_token(7), "com.example.other")
    other = await apns_send(http, apns_fake, fake_apns_key, device_token(7))
    assert (other.status, await reason(other)) == (400, "DeviceTokenNotForTopic")
    apns_fake.register_device(device_token(8), fake_apns_key.topic, environment="development")
    sandbox = await apns_send(http, apns_fake, fake_apns_key, device_token(8))
    assert (sandbox.status, await reason(sandbox)) == (400, "BadDeviceToken")


async def test_apns_duplicate_headers_and_wrong_method_or_path(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    headers = [*apns_headers(fake_apns_key).items(), ("apns-topic", fake_apns_key.topic)]
    duplicate = await post(http, f"{apns_fake.url}/3/device/{TOKEN}", headers=headers, body=PAYLOAD)
    assert (duplicate.status, await reason(duplicate)) == (400, "DuplicateHeaders")
    wrong_method = await http.get(f"{apns_fake.url}/3/device/{TOKEN}").build().send()
    assert (wrong_method.status, await reason(wrong_method)) == (405, "MethodNotAllowed")
    wrong_path = await post(http, f"{apns_fake.url}/2/device/{TOKEN}", body=PAYLOAD)
    assert (wrong_path.status, await reason(wrong_path)) == (404, "BadPath")


async def test_apns_provider_token_checks(
    http: Client, apns_fake: ApnsFake, apns_sandbox_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    async def answer(jwt: str, fake: ApnsFake = apns_fake) -> tuple[int, str | None]:
        response = await apns_send(http, fake, fake_apns_key, authorization=f"bearer {jwt}")
        return response.status, (await reason(response)) if response.status != 200 else None

    now = int(time.time())
    impostor = ApnsKey(key_id=fake_apns_key.key_id, team_id=fake_apns_key.team_id)
    assert await answer(fake_apns_key.jwt(now - 59 * 60)) == (200, None)
    assert await answer(fake_apns_key.jwt(now - 61 * 60)) == (403, "ExpiredProviderToken")
    assert await answer(fake_apns_key.jwt(kid="UNKNOWN123")) == (403, "InvalidProviderToken")
    assert await answer(fake_apns_key.jwt(iss="OTHERTEAM1")) == (403, "InvalidProviderToken")
    assert await answer(impostor.jwt()) == (403, "InvalidProviderToken")
    assert await answer("not.a.jwt") == (403, "InvalidProviderToken")
    assert await answer(fake_apns_key.jwt(), apns_sandbox_fake) == (200, None)

    sandbox_only = ApnsKey(key_id="SANDBOX001", environments=("development",))
    apns_fake.add_key(sandbox_only)
    response = await apns_send(
        http, apns_fake, fake_apns_key, authorization=f"bearer {sandbox_only.jwt()}"
    )
    assert (response.status, await reason(response)) == (403, "BadEnvironmentKeyIdInToken")


async def test_apns_verifies_each_provider_token_once(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    headers = apns_headers(fake_apns_key)
    url = f"{apns_fake.url}/3/device/"
    responses = await asyncio.gather(
        *(post(http, url + device_token(i), headers=headers, body=PAYLOAD) for i in range(50))
    )
    assert {r.status for r in responses} == {200}
    assert apns_fake.stats()["jwt_verifications"] == 1


async def test_apns_refuses_provider_token_churn_when_asked(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_fake.configure(token_update_interval=20 * 60)
    now = int(time.time())
    first = await apns_send(
        http, apns_fake, fake_apns_key, authorization=f"bearer {fake_apns_key.jwt(now)}"
    )
    churn = await apns_send(
        http, apns_fake, fake_apns_key, authorization=f"bearer {fake_apns_key.jwt(now - 1)}"
    )
    assert first.status == 200
    assert (churn.status, await reason(churn)) == (429, "TooManyProviderTokenUpdates")


PROVIDERS_MD_APNS_REASONS = [
    "BadDeviceToken",
    "DeviceTokenNotForTopic",
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
    "ExpiredProviderToken",
    "InvalidProviderToken",
    "BadCertificate",
    "BadEnvironmentKeyIdInToken",
    "Forbidden",
    "MissingProviderToken",
    "Unregistered",
    "ExpiredToken",
    "PayloadTooLarge",
    "TooManyRequests",
    "InternalServerError",
    "ServiceUnavailable",
    "Shutdown",
]


@pytest.mark.parametrize("programmed", PROVIDERS_MD_APNS_REASONS)
async def test_apns_programmed_answers(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey, programmed: str
) -> None:
    apns_fake.program(TOKEN, programmed, retry_after=7, times=2, timestamp=1_700_000_000_000)
    first = await apns_send(http, apns_fake, fake_apns_key)
    second = await apns_send(http, apns_fake, fake_apns_key)
    third = await apns_send(http, apns_fake, fake_apns_key)
    expected: dict[str, Any] = {"reason": programmed}
    if REASONS[programmed] == 410:
        expected["timestamp"] = 1_700_000_000_000
    for response in (first, second):
        assert response.status == REASONS[programmed]
        assert await response.json() == expected
        assert response.get_header("retry-after") == "7"
    assert third.status == 200
    assert apns_fake.counts() == {TOKEN: 1}
    assert apns_fake.attempts() == {TOKEN: 3}


async def test_apns_unregistered_defaults_to_now(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    before = int(time.time() * 1000)
    apns_fake.program(TOKEN, "Unregistered")
    response = await apns_send(http, apns_fake, fake_apns_key)
    answer = await response.json()
    assert response.status == 410 and answer["reason"] == "Unregistered"
    assert before <= answer["timestamp"] <= int(time.time() * 1000)
    # Without ``times`` the token stays dead.
    assert (await apns_send(http, apns_fake, fake_apns_key)).status == 410


@pytest.mark.parametrize(
    ("status", "expected"),
    [(503, "ServiceUnavailable"), (500, "InternalServerError"), (429, "TooManyRequests")],
)
async def test_apns_fail_every_request(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey, status: int, expected: str
) -> None:
    apns_fake.fail(status, retry_after=3, times=1)
    failed = await apns_send(http, apns_fake, fake_apns_key, device_token(5))
    assert (failed.status, await reason(failed)) == (status, expected)
    assert failed.get_header("retry-after") == "3"
    assert (await apns_send(http, apns_fake, fake_apns_key, device_token(6))).status == 200


async def test_apns_http1_is_refused(apns_fake: ApnsFake, fake_ca: FakeCA) -> None:
    async with httpx.AsyncClient(verify=fake_ca.client_context()) as client:
        response = await client.post(f"{apns_fake.url}/3/device/{TOKEN}", content=b"{}")
    assert response.status_code == 505


# Faults, seen by a real client.


async def test_delay_and_per_token_delay(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_fake.program(device_token(3), delay=0.3, times=1)
    started = time.monotonic()
    slow, fast = await asyncio.gather(
        apns_send(http, apns_fake, fake_apns_key, device_token(3)),
        apns_send(http, apns_fake, fake_apns_key, device_token(4)),
    )
    assert slow.status == fast.status == 200
    assert time.monotonic() - started >= 0.3
    apns_fake.delay(0.2)
    started = time.monotonic()
    assert (await apns_send(http, apns_fake, fake_apns_key)).status == 200
    assert time.monotonic() - started >= 0.2


async def test_hang_until_the_client_gives_up(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_fake.hang()
    started = time.monotonic()
    with pytest.raises(PyreqwestError) as caught:
        await post(
            http,
            f"{apns_fake.url}/3/device/{TOKEN}",
            headers=apns_headers(fake_apns_key),
            body=PAYLOAD,
            timeout=0.3,
        )
    assert isinstance(caught.value, TimeoutError)
    assert 0.3 <= time.monotonic() - started < 2
    [hung] = apns_fake.requests()
    assert (hung.status, hung.action) == (None, "hang")
    assert apns_fake.counts() == {}
    apns_fake.hang(False)
    apns_fake.program(device_token(2), hang=True)
    assert (await apns_send(http, apns_fake, fake_apns_key)).status == 200


async def test_goaway_observed_by_the_client(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_fake.goaway_after(5, connections=1)
    assert (await apns_send(http, apns_fake, fake_apns_key, device_token(100))).status == 200
    tokens = [device_token(i) for i in range(20)]
    responses = await asyncio.gather(
        *(apns_send(http, apns_fake, fake_apns_key, token) for token in tokens)
    )
    # hyper resends what the GOAWAY left unprocessed on a new connection.
    assert {r.status for r in responses} == {200}
    stats = apns_fake.stats()
    assert stats["goaways"] == 1 and stats["connections"] == 2
    apns_fake.assert_delivered_once([*tokens, device_token(100)])


async def test_dropped_connection_observed_by_the_client(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_fake.drop_after(1, connections=1)
    assert (await apns_send(http, apns_fake, fake_apns_key, device_token(1))).status == 200
    with pytest.raises(PyreqwestError, match="connection"):
        await apns_send(http, apns_fake, fake_apns_key, device_token(2))
    assert (await apns_send(http, apns_fake, fake_apns_key, device_token(3))).status == 200
    assert apns_fake.stats()["drops"] == 1
    assert apns_fake.counts() == {device_token(1): 1, device_token(3): 1}


async def test_per_token_drop(http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey) -> None:
    apns_fake.program(device_token(9), drop=True, times=1)
    with pytest.raises(PyreqwestError):
        await apns_send(http, apns_fake, fake_apns_key, device_token(9))
    assert (await apns_send(http, apns_fake, fake_apns_key, device_token(9))).status == 200


class RawH2:
    """A bare HTTP/2 client on a blocking socket, to see frames a high-level client hides."""

    def __init__(self, url: str, ca_file: str) -> None:
        parts = urlsplit(url)
        self.authority = parts.netloc
        context = ssl.create_default_context(cafile=ca_file)
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname=parts.hostname)
        assert self.sock.selected_alpn_protocol() == "h2"
        config = h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        self.conn = h2.connection.H2Connection(config)
        self.conn.initiate_connection()
        self.statuses: dict[int, int] = {}
        self.ended: set[int] = set()
        self.terminated: h2.events.ConnectionTerminated | None = None
        self.eof = False
        self.flush()

    def flush(self) -> None:
        self.sock.sendall(self.conn.data_to_send())

    def request(self, path: str, headers: dict[str, str], body: bytes) -> int:
        sid = self.conn.get_next_available_stream_id()
        pseudo = [(":method", "POST"), (":scheme", "https"), (":authority", self.authority)]
        self.conn.send_headers(sid, [*pseudo, (":path", path), *headers.items()])
        self.conn.send_data(sid, body, end_stream=True)
        return sid

    def pump(self, until: Callable[[], bool], timeout: float = 5) -> None:
        deadline = time.monotonic() + timeout
        while not until() and not self.eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.sock.settimeout(remaining)
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                break
            except (ssl.SSLError, ConnectionResetError):
                data = b""
            if not data:
                self.eof = True
                break
            for event in self.conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    for name, value in event.headers:
                        if name in (":status", b":status"):
                            self.statuses[event.stream_id] = int(value)
                elif isinstance(event, h2.events.DataReceived):
                    self.conn.acknowledge_received_data(
                        event.flow_controlled_length, event.stream_id
                    )
                elif isinstance(event, h2.events.StreamEnded):
                    self.ended.add(event.stream_id)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    self.terminated = event
            out = self.conn.data_to_send()
            if out:
                with contextlib.suppress(OSError):
                    self.sock.sendall(out)

    def close(self) -> None:
        self.sock.close()


def raw_apns(fake: ApnsFake, key: ApnsKey) -> tuple[RawH2, Callable[[int], int]]:
    client = RawH2(fake.url, fake.ca_file)
    headers = apns_headers(key)
    body = json.dumps(PAYLOAD).encode()
    return client, lambda n: client.request(f"/3/device/{device_token(n)}", headers, body)


async def test_goaway_names_the_last_processed_stream(
    apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_fake.goaway_after(3)
    client, send = raw_apns(apns_fake, fake_apns_key)
    try:
        sids = [send(n) for n in range(6)]
        client.flush()
        client.pump(lambda: False, timeout=3)
    finally:
        client.close()
    assert client.terminated is not None
    assert client.terminated.last_stream_id == sids[2]
    assert client.terminated.error_code == 0
    assert client.statuses == {sid: 200 for sid in sids[:3]}
    assert client.eof
    assert sorted(apns_fake.counts()) == [device_token(n) for n in range(3)]
    assert apns_fake.stats()["ignored_after_goaway"] == 3


async def test_drop_closes_without_goaway(apns_fake: ApnsFake, fake_apns_key: ApnsKey) -> None:
    apns_fake.drop_after(2)
    client, send = raw_apns(apns_fake, fake_apns_key)
    try:
        first = [send(0), send(1)]
        client.flush()
        client.pump(lambda: set(first) <= client.ended)
        third = send(2)
        client.flush()
        client.pump(lambda: False, timeout=3)
    finally:
        client.close()
    assert client.statuses == {first[0]: 200, first[1]: 200}
    assert third not in client.statuses
    assert client.eof and client.terminated is None


async def test_max_concurrent_streams_announced_and_enforced(
    apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    apns_fake.max_concurrent_streams(1)
    apns_fake.hang()
    client, send = raw_apns(apns_fake, fake_apns_key)
    try:
        client.pump(lambda: client.conn.remote_settings.max_concurrent_streams == 1)
        assert client.conn.remote_settings.max_concurrent_streams == 1
        apns_fake.max_concurrent_streams(5)
        client.pump(lambda: client.conn.remote_settings.max_concurrent_streams == 5)
        assert client.conn.remote_settings.max_concurrent_streams == 5
        apns_fake.max_concurrent_streams(1)
        client.pump(lambda: client.conn.remote_settings.max_concurrent_streams == 1)
        hung = send(0)
        client.flush()
        client.pump(lambda: False, timeout=0.2)
        # The client library itself refuses to open a second stream above the limit.
        with pytest.raises(h2.exceptions.TooManyStreamsError):
            send(1)
    finally:
        client.close()
    assert hung not in client.statuses
    assert apns_fake.stats()["open_connections"] in (0, 1)


async def test_control_endpoints_over_http2(
    http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey
) -> None:
    programmed = await post(
        http, f"{apns_fake.url}/_fake/program", body={"token": TOKEN, "reason": "Unregistered"}
    )
    assert programmed.status == 200
    assert (await apns_send(http, apns_fake, fake_apns_key)).status == 410
    stats = await http.get(f"{apns_fake.url}/_fake/stats").build().send()
    assert (await stats.json())["result"]["requests"] == 1
    wrong = await post(http, f"{apns_fake.url}/_fake/program", body={"reason": "Nonsense"})
    assert wrong.status == 400 and "unknown APNs reason" in (await wrong.json())["error"]
    assert apns_fake.stats()["connections"] == 1


async def test_counts_only_mode(http: Client, apns_fake: ApnsFake, fake_apns_key: ApnsKey) -> None:
    apns_fake.record_bodies(False)
    tokens = [device_token(i) for i in range(30)]
    await asyncio.gather(*(apns_send(http, apns_fake, fake_apns_key, t) for t in tokens))
    assert apns_fake.requests() == []
    summary = apns_fake.summary()
    assert (summary.requests, summary.delivered, summary.distinct_delivered) == (30, 30, 30)
    assert summary.duplicates == {}
    await apns_send(http, apns_fake, fake_apns_key, tokens[0])
    with pytest.raises(AssertionError, match="duplicated 1"):
        apns_fake.assert_delivered_once(tokens)


def test_hpack_decoder_matches_the_reference_encoder() -> None:
    rng = random.Random(7)
    encoder = hpack.Encoder()
    decoder = HpackDecoder()
    alphabet = string.ascii_letters + string.digits + "-_./:;=+ %~"
    for round_ in range(300):
        if round_ % 50 == 49:
            # Forces dynamic table size updates at the start of the next block.
            encoder.header_table_size = rng.choice([0, 256, 4096])
        headers = [
            (
                rng.choice(["x-custom", "apns-topic", ":path", "authorization", "accept"]),
                "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 90))),
            )
            for _ in range(rng.randint(1, 12))
        ]
        block = encoder.encode(headers, huffman=rng.random() < 0.7)
        decoded = decoder.decode(block)
        assert [(n.decode(), v.decode()) for n, v in decoded] == headers


# Google: OAuth token endpoint and FCM.


async def access_token(http: Client, fake: GoogleFake, account: ServiceAccount) -> str:
    response = await post(
        http, account.token_uri, form={"grant_type": JWT_BEARER, "assertion": account.assertion()}
    )
    assert response.status == 200, await response.text()
    return str((await response.json())["access_token"])


def fcm_message(token: str = "fcm-token-1", **android: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "token": token,
        "data": {"messageId": "42", "extra": json.dumps({"a": 1})},
        "android": {
            "priority": "high",
            "ttl": "3600s",
            "collapse_key": "payments",
            "notification": {
                "title": "Hi",
                "body": "there",
                "title_loc_key": "t",
                "title_loc_args": ["a"],
                "body_loc_key": "b",
                "body_loc_args": ["b"],
                "icon": "ic",
                "sound": "default",
                "tag": "category",
                "notification_count": 3,
            },
        },
    }
    message["android"].update(android)
    return {"message": message}


async def fcm_send(
    http: Client, fake: GoogleFake, bearer: str, body: Any, project: str = "demo-bank"
) -> Response:
    return await post(
        http,
        f"{fake.url}/v1/projects/{project}/messages:send",
        headers={"authorization": f"Bearer {bearer}", "content-type": "application/json"},
        body=body if isinstance(body, bytes) else json.dumps(body).encode(),
    )


async def test_google_token_and_send(
    http: Client, google_fake: GoogleFake, fake_service_account: ServiceAccount
) -> None:
    assert fake_service_account.token_uri == f"{google_fake.url}/token"
    token_answer = await post(
        http,
        fake_service_account.token_uri,
        form={"grant_type": JWT_BEARER, "assertion": fake_service_account.assertion()},
    )
    document = await token_answer.json()
    assert token_answer.status == 200
    assert set(document) == {"access_token", "expires_in", "token_type"}
    assert (document["expires_in"], document["token_type"]) == (3599, "Bearer")
    response = await fcm_send(http, google_fake, document["access_token"], fcm_message())
    assert response.status == 200
    name = (await response.json())["name"]
    assert name.startswith("projects/demo-bank/messages/")
    sends = google_fake.requests(path="/v1/")
    assert sends[0].body == fcm_message()
    assert google_fake.counts() == {"fcm-token-1": 1}
    assert google_fake.stats()["tokens_issued"] == 1


async def test_google_token_over_http1(
    google_fake: GoogleFake, fake_service_account: ServiceAccount, fake_ca: FakeCA
) -> None:
    async with httpx.AsyncClient(verify=fake_ca.client_context()) as client:
        response = await client.post(
            fake_service_account.token_uri,
            data={"grant_type": JWT_BEARER, "assertion": fake_service_account.assertion()},
        )
    assert response.status_code == 200 and response.http_version == "HTTP/1.1"
    assert response.json()["token_type"] == "Bearer"


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"grant_type": "client_credentials"}, "unsupported_grant_type"),
        ({"assertion": ""}, "invalid_request"),
        ({"aud": "https://example.com/token"}, "invalid_grant"),
        ({"scope": "https://www.googleapis.com/auth/cloud-platform"}, "invalid_scope"),
        ({"iat": int(time.time()) - 7200}, "invalid_grant"),
        ({"lifetime": 7200}, "invalid_grant"),
        ({"kid": "another-key-id"}, "invalid_grant"),
        ({"signer": "impostor"}, "invalid_grant"),
        ({"signer": "unknown"}, "invalid_grant"),
    ],
)
async def test_google_token_refusals(
    http: Client,
    google_fake: GoogleFake,
    fake_service_account: ServiceAccount,
    change: dict[str, Any],
    error: str,
) -> None:
    account = fake_service_account
    if change.get("signer") == "impostor":
        account = ServiceAccount(client_email=account.client_email)
    elif change.get("signer") == "unknown":
        account = ServiceAccount(client_email="nobody@nowhere.iam.gserviceaccount.com")
    options = {k: v for k, v in change.items() if k in ("aud", "scope", "iat", "lifetime", "kid")}
    form = {"grant_type": JWT_BEARER, "assertion": account.assertion(**options)}
    form.update({k: v for k, v in change.items() if k in ("grant_type", "assertion")})
    response = await post(http, fake_service_account.token_uri, form=form)
    document = await response.json()
    assert response.status == 400
    assert document["error"] == error and document["error_description"]


async def test_google_token_lifetime_and_programmed_refusal(
    http: Client, google_fake: GoogleFake, fake_service_account: ServiceAccount
) -> None:
    google_fake.token_lifetime(120)
    form = {"grant_type": JWT_BEARER, "assertion": fake_service_account.assertion()}
    assert (await (await post(http, fake_service_account.token_uri, form=form)).json())[
        "expires_in"
    ] == 120
    google_fake.token_fail("invalid_grant", "Invalid JWT Signature.", times=1)
    refused = await post(http, fake_service_account.token_uri, form=form)
    assert refused.status == 400
    assert await refused.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid JWT Signature.",
    }
    assert (await post(http, fake_service_account.token_uri, form=form)).status == 200


async def test_fcm_authentication(
    http: Client, google_fake: GoogleFake, fake_service_account: ServiceAccount
) -> None:
    for bearer in ("", "ya29.made-up"):
        response = await fcm_send(http, google_fake, bearer, fcm_message())
        error = (await response.json())["error"]
        assert response.status == 401
        assert error["status"] == "UNAUTHENTICATED" and "details" not in error
    token = await access_token(http, google_fake, fake_service_account)
    other = await fcm_send(http, google_fake, token, fcm_message(), project="other-project")
    assert other.status == 403
    assert (await other.json())["error"]["status"] == "PERMISSION_DENIED"
    assert (await fcm_send(http, google_fake, token, fcm_message())).status == 200
    google_fake.expire_access_tokens()
    expired = await fcm_send(http, google_fake, token, fcm_message())
    assert expired.status == 401
    assert "details" not in (await expired.json())["error"]
    fresh = await access_token(http, google_fake, fake_service_account)
    assert (await fcm_send(http, google_fake, fresh, fcm_message())).status == 200


@pytest.mark.parametrize(
    ("body", "field", "fcm_error"),
    [
        (fcm_message() | {"extra": 1}, "", False),
        ({"message": {"token": "t", "data": {"n": 1}}}, "message.data[0].value", False),
        (fcm_message(priority="urgent"), "message.android.priority", False),
        (fcm_message(ttl="1h"), "message.android.ttl", False),
        (fcm_message(ttl=f"{29 * 24 * 3600}s"), "message.android.ttl", True),
        (fcm_message(notification={"titel": "typo"}), "message.android.notification", False),
        ({"message": {"token": "t", "topic": "news"}}, "message", False),
        ({"message": {"data": {"a": "b"}}}, "message", True),
        ({"message": {"token": ["t1", "t2"]}}, "message.token", False),
        ({"message": {"token": "t", "data": {"from": "x"}}}, "message.data", True),
        (b"{not json", "", False),
    ],
)
async def test_fcm_message_validation(
    http: Client,
    google_fake: GoogleFake,
    fake_service_account: ServiceAccount,
    body: Any,
    field: str,
    fcm_error: bool,
) -> None:
    token = await access_token(http, google_fake, fake_service_account)
    response = await fcm_send(http, google_fake, token, body)
    error = (await response.json())["error"]
    assert response.status == 400
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    types = [detail["@type"] for detail in error["details"]]
    assert (FCM_ERROR_TYPE in types) is fcm_error
    violations = [d for d in error["details"] if "fieldViolations" in d]
    assert violations[0]["fieldViolations"][0]["field"] == field
    assert google_fake.counts() == {}


FCM_TABLE = [
    ("UNREGISTERED", 404, "NOT_FOUND"),
    ("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT"),
    ("SENDER_ID_MISMATCH", 403, "PERMISSION_DENIED"),
    ("QUOTA_EXCEEDED", 429, "RESOURCE_EXHAUSTED"),
    ("UNAVAILABLE", 503, "UNAVAILABLE"),
    ("INTERNAL", 500, "INTERNAL"),
    ("THIRD_PARTY_AUTH_ERROR", 401, "UNAUTHENTICATED"),
]


@pytest.mark.parametrize(("code", "status", "google_status"), FCM_TABLE)
async def test_fcm_programmed_errors(
    http: Client,
    google_fake: GoogleFake,
    fake_service_account: ServiceAccount,
    code: str,
    status: int,
    google_status: str,
) -> None:
    token = await access_token(http, google_fake, fake_service_account)
    google_fake.program("fcm-token-1", code, retry_after=11, times=1)
    failed = await fcm_send(http, google_fake, token, fcm_message())
    error = (await failed.json())["error"]
    assert failed.status == status
    assert set(error) == {"code", "message", "status", "details"}
    assert (error["code"], error["status"]) == (status, google_status)
    assert error["details"] == [{"@type": FCM_ERROR_TYPE, "errorCode": code}]
    assert failed.get_header("retry-after") == "11"
    assert (await fcm_send(http, google_fake, token, fcm_message())).status == 200
    assert google_fake.counts() == {"fcm-token-1": 1}


async def test_large_request_bodies_flow_controlled(
    http: Client, google_fake: GoogleFake, fake_service_account: ServiceAccount
) -> None:
    token = await access_token(http, google_fake, fake_service_account)
    big = {"message": {"token": "t", "data": {"blob": "x" * 300_000}}}
    response = await fcm_send(http, google_fake, token, big)
    assert response.status == 400
    assert (await response.json())["error"]["message"] == "Android message is too big"
    assert google_fake.requests(path="/v1/")[0].body == big


async def test_fcm_invalid_registration_token_and_bare_401(
    http: Client, google_fake: GoogleFake, fake_service_account: ServiceAccount
) -> None:
    token = await access_token(http, google_fake, fake_service_account)
    google_fake.program("fcm-token-1", "INVALID_ARGUMENT", message=INVALID_REGISTRATION_TOKEN)
    google_fake.program("fcm-token-2", "UNAUTHENTICATED", times=1)
    invalid = await fcm_send(http, google_fake, token, fcm_message())
    assert (await invalid.json())["error"]["message"] == INVALID_REGISTRATION_TOKEN
    bare = await fcm_send(http, google_fake, token, fcm_message("fcm-token-2"))
    assert bare.status == 401
    assert "details" not in (await bare.json())["error"]


async def test_fcm_validate_only_and_faults(
    http: Client, google_fake: GoogleFake, fake_service_account: ServiceAccount
) -> None:
    token = await access_token(http, google_fake, fake_service_account)
    dry = await fcm_send(http, google_fake, token, fcm_message() | {"validate_only": True})
    assert dry.status == 200 and google_fake.counts() == {}
    google_fake.fail(503, retry_after=2, times=1)
    unavailable = await fcm_send(http, google_fake, token, fcm_message())
    assert unavailable.status == 503 and unavailable.get_header("retry-after") == "2"
    google_fake.drop_after(0, connections=1)
    with pytest.raises(PyreqwestError):
        await fcm_send(http, google_fake, token, fcm_message())
    assert (await fcm_send(http, google_fake, token, fcm_message())).status == 200


# Huawei


async def hms_token(http: Client, fake: HmsFake, app: HmsApp) -> str:
    form = {
        "grant_type": "client_credentials",
        "client_id": app.client_id,
        "client_secret": app.client_secret,
    }
    response = await post(http, fake.token_url, form=form)
    document = await response.json()
    assert response.status == 200, document
    assert set(document) == {"access_token", "expires_in", "token_type"}
    assert document["expires_in"] == 3600
    return str(document["access_token"])


def hms_message(token: str = "hms-token-1") -> dict[str, Any]:
    return {
        "validate_only": False,
        "message": {
            "token": [token],
            "data": json.dumps({"messageId": "42"}),
            "android": {
                "collapse_key": -1,
                "ttl": "3600s",
                "urgency": "HIGH",
                "notification": {
                    "title": "Hi",
                    "body": "there",
                    "click_action": {"type": 3},
                    "badge": {"set_num": 2},
                },
            },
        },
    }


async def hms_send(http: Client, fake: HmsFake, bearer: str, body: Any) -> Response:
    return await post(
        http,
        f"{fake.url}/v2/{HmsApp().project_id}/messages:send",
        headers={"authorization": f"Bearer {bearer}", "content-type": "application/json"},
        body=body,
    )


async def test_hms_token_and_send(http: Client, hms_fake: HmsFake, fake_hms_app: HmsApp) -> None:
    token = await hms_token(http, hms_fake, fake_hms_app)
    response = await hms_send(http, hms_fake, token, hms_message())
    answer = await response.json()
    assert response.status == 200
    assert (answer["code"], answer["msg"]) == ("80000000", "Success") and answer["requestId"]
    assert hms_fake.requests(path="/v2/")[0].body == hms_message()
    assert hms_fake.counts() == {"hms-token-1": 1}


async def test_hms_token_refusals(http: Client, hms_fake: HmsFake, fake_hms_app: HmsApp) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": fake_hms_app.client_id,
        "client_secret": "wrong",
    }
    wrong_secret = await post(http, hms_fake.token_url, form=form)
    assert wrong_secret.status == 400
    assert (await wrong_secret.json())["error"] == 1101
    wrong_grant = await post(http, hms_fake.token_url, form=form | {"grant_type": "password"})
    assert wrong_grant.status == 400


async def test_hms_authentication(http: Client, hms_fake: HmsFake, fake_hms_app: HmsApp) -> None:
    bogus = await hms_send(http, hms_fake, "hms.bogus.token", hms_message())
    assert (bogus.status, (await bogus.json())["code"]) == (401, "80200001")
    token = await hms_token(http, hms_fake, fake_hms_app)
    hms_fake.expire_access_tokens()
    expired = await hms_send(http, hms_fake, token, hms_message())
    assert (expired.status, (await expired.json())["code"]) == (401, "80200003")


@pytest.mark.parametrize(
    ("code", "status"),
    [("80100000", 200), ("80300007", 400), ("80200003", 401), ("81000001", 500), ("503", 503)],
)
async def test_hms_programmed_answers(
    http: Client, hms_fake: HmsFake, fake_hms_app: HmsApp, code: str, status: int
) -> None:
    token = await hms_token(http, hms_fake, fake_hms_app)
    hms_fake.program("hms-token-1", code, times=1, retry_after=5)
    failed = await hms_send(http, hms_fake, token, hms_message())
    answer = await failed.json()
    assert failed.status == status and answer["code"] == code
    assert failed.get_header("retry-after") == "5"
    if code == "80100000":
        assert json.loads(answer["msg"])["illegal_tokens"] == ["hms-token-1"]
    assert (await hms_send(http, hms_fake, token, hms_message())).status == 200
    assert hms_fake.counts() == {"hms-token-1": 1}


async def test_hms_message_validation(
    http: Client, hms_fake: HmsFake, fake_hms_app: HmsApp
) -> None:
    token = await hms_token(http, hms_fake, fake_hms_app)
    no_click = hms_message()
    del no_click["message"]["android"]["notification"]["click_action"]
    dict_data = hms_message()
    dict_data["message"]["data"] = {"messageId": "42"}
    no_tokens = hms_message()
    no_tokens["message"]["token"] = []
    for body, code in ((no_click, "80100003"), (dict_data, "80100003"), (no_tokens, "80300010")):
        response = await hms_send(http, hms_fake, token, body)
        assert (response.status, (await response.json())["code"]) == (400, code)
    assert hms_fake.counts() == {}


async def test_hms_goaway(http: Client, hms_fake: HmsFake, fake_hms_app: HmsApp) -> None:
    token = await hms_token(http, hms_fake, fake_hms_app)
    hms_fake.goaway_after(1, connections=1)
    responses = await asyncio.gather(
        *(hms_send(http, hms_fake, token, hms_message(f"t{i}")) for i in range(10))
    )
    assert {r.status for r in responses} == {200}
    assert hms_fake.stats()["goaways"] == 1
    hms_fake.assert_delivered_once([f"t{i}" for i in range(10)])


# A separate process, driven through the control endpoints.


async def test_fake_process_is_driven_remotely() -> None:
    key = ApnsKey()
    with FakeProcess("apns", "google", "hms") as fakes:
        assert fakes.apns is not None and fakes.google is not None and fakes.hms is not None
        client = (
            ClientBuilder()
            .http2_prior_knowledge()
            .add_root_certificate_pem(Path(fakes.ca_file).read_bytes())
            .timeout(timedelta(seconds=5))
            .build()
        )
        fakes.apns.add_key(key)
        fakes.apns.program(device_token(2), "BadDeviceToken")
        async with client:
            ok = await post(
                client,
                f"{fakes.apns.url}/3/device/{device_token(1)}",
                headers=apns_headers(key),
                body=PAYLOAD,
            )
            bad = await post(
                client,
                f"{fakes.apns.url}/3/device/{device_token(2)}",
                headers=apns_headers(key),
                body=PAYLOAD,
            )
        assert ok.status == 200 and (bad.status, await reason(bad)) == (400, "BadDeviceToken")
        assert fakes.apns.counts() == {device_token(1): 1}
        assert [r.status for r in fakes.apns.requests()] == [200, 400]
        assert fakes.apns.stats()["connections"] == 1
        account = ServiceAccount()
        info = fakes.google.add_service_account(account)
        assert info["token_uri"] == f"{fakes.google.url}/token"
        assert fakes.hms.token_url.endswith("/oauth2/v3/token")
    assert SCOPE.endswith("firebase.messaging")
