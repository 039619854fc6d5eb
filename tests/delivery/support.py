"""Driving the message API against the fake providers: applications, devices, sends, rows."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from fastapi import FastAPI
from sqlalchemy import select, update

from pushserver.db.engine import Database
from pushserver.db.models import PushDevice, PushMessage
from pushserver.delivery.worker import Worker
from pushserver.settings import Settings
from tests.conftest import b64, b64json
from tests.fakes.apns import ApnsFake, ApnsKey, device_token
from tests.fakes.google import GoogleFake, ServiceAccount
from tests.fakes.hms import HmsApp, HmsFake
from tests.fakes.runner import RecordedRequest

Json = dict[str, Any]
Headers = dict[str, str]

SEND = "/push/message/send"
BATCH = "/push/message/batch/send"
APNS_PATH = "/3/device/"
FCM_PATH = "/v1/projects/"
HMS_PATH = "/v2/"

# Application ids are never reused within a session: each process caches an application's
# senders by id, so a reused id could meet the previous test's credentials.
_app_ids = itertools.count(100)
_tokens = itertools.count(1)


def ios_token() -> str:
    return device_token(next(_tokens))


def android_token() -> str:
    return f"fcm-registration-token-{next(_tokens):08d}"


def huawei_token() -> str:
    return f"hms-push-token-{next(_tokens):08d}"


TOKEN_FACTORIES = {"ios": ios_token, "android": android_token, "huawei": huawei_token}


def message(user_id: str = "alice", **fields: Any) -> Json:
    """A message for ``user_id``; ``body`` and the other fields as given."""
    return {"userId": user_id, "body": {"title": "Hello", "body": "World"}} | fields


def counts(sent: int = 0, failed: int = 0, pending: int = 0) -> Json:
    return {"sent": sent, "failed": failed, "pending": pending, "total": sent + failed + pending}


def parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Device:
    id: int
    app_id: int
    platform: str
    token: str
    activation_id: str
    user_id: str


@dataclass
class Push:
    """The server under test (its API client and database) and the fake providers it calls."""

    client: httpx.AsyncClient
    app: FastAPI
    database: Database
    settings: Settings
    admin: Headers
    sender: Headers
    registrar: Headers
    apns: ApnsFake
    sandbox: ApnsFake
    google: GoogleFake
    hms: HmsFake
    apns_key: ApnsKey
    account: ServiceAccount
    hms_app: HmsApp

    # Setting up

    async def create_app(
        self,
        *,
        ios: bool = True,
        android: bool = True,
        huawei: bool = True,
        ios_environment: str | None = None,
        hms_secret: str | None = None,
    ) -> int:
        """A new application, with credentials the fakes accept for the platforms asked."""
        app_id = next(_app_ids)
        calls: list[tuple[str, Json]] = [("/admin/app/create", {"appId": app_id})]
        if ios:
            ios_update: Json = {
                "appId": app_id,
                "bundle": self.apns_key.topic,
                "keyId": self.apns_key.key_id,
                "teamId": self.apns_key.team_id,
                "privateKeyBase64": b64(self.apns_key.private_pem),
            }
            if ios_environment is not None:
                ios_update["environment"] = ios_environment
            calls.append(("/admin/app/ios/update", ios_update))
        if android:
            calls.append(
                (
                    "/admin/app/android/update",
                    {"appId": app_id, "privateKeyBase64": b64json(self.account.info())},
                )
            )
        if huawei:
            calls.append(
                (
                    "/admin/app/huawei/update",
                    {
                        "appId": app_id,
                        "projectId": self.hms_app.project_id,
                        "clientId": self.hms_app.client_id,
                        "clientSecret": hms_secret or self.hms_app.client_secret,
                    },
                )
            )
        for path, payload in calls:
            response = await self.client.post(
                path, headers=self.admin, json={"requestObject": payload}
            )
            assert response.status_code == 200, response.text
        return app_id

    async def register(
        self,
        app_id: int,
        platform: str,
        *,
        token: str | None = None,
        user_id: str = "alice",
        status: str = "ACTIVE",
        environment: str | None = None,
    ) -> Device:
        activation_id = str(uuid.uuid4())
        token = token or TOKEN_FACTORIES[platform]()
        payload: Json = {
            "appId": app_id,
            "token": token,
            "platform": platform,
            "activationId": activation_id,
            "userId": user_id,
            "activationStatus": status,
        }
        if environment is not None:
            payload["environment"] = environment
        response = await self.client.post(
            "/push/device/create", headers=self.registrar, json={"requestObject": payload}
        )
        assert response.status_code == 200, response.text
        async with self.database.transaction() as session:
            device_id = await session.scalar(
                select(PushDevice.id).where(
                    PushDevice.app_id == app_id, PushDevice.activation_id == activation_id
                )
            )
        assert device_id is not None
        return Device(device_id, app_id, platform, token, activation_id, user_id)

    async def app_with_devices(self, **credentials: Any) -> tuple[int, dict[str, Device]]:
        """An application with one active device of alice's per platform."""
        app_id = await self.create_app(**credentials)
        devices = {
            platform: await self.register(app_id, platform)
            for platform in ("ios", "android", "huawei")
        }
        return app_id, devices

    # Calling the API

    async def send(
        self,
        app_id: int,
        body: Json,
        mode: str = "SYNCHRONOUS",
        headers: Headers | None = None,
    ) -> httpx.Response:
        payload = {"appId": app_id, "mode": mode, "message": body}
        return await self.client.post(
            SEND, headers=headers or self.sender, json={"requestObject": payload}
        )

    async def batch(
        self, app_id: int, bodies: list[Json], mode: str = "SYNCHRONOUS"
    ) -> httpx.Response:
        payload = {"appId": app_id, "mode": mode, "batch": bodies}
        return await self.client.post(BATCH, headers=self.sender, json={"requestObject": payload})

    async def send_ok(self, app_id: int, body: Json, mode: str = "SYNCHRONOUS") -> Json:
        result: Json = ok(await self.send(app_id, body, mode))
        return result

    async def detail(self, message_id: int) -> Json:
        response = await self.client.get(f"/push/message/{message_id}/detail", headers=self.sender)
        result: Json = ok(response)
        return result

    # Reading the database

    async def rows(self) -> list[PushMessage]:
        async with self.database.transaction() as session:
            return list((await session.scalars(select(PushMessage).order_by(PushMessage.id))).all())

    async def row_for(self, device: Device) -> PushMessage:
        """The latest message to the device."""
        rows = [row for row in await self.rows() if row.device_registration_id == device.id]
        assert rows, f"no message for device {device.id}"
        return rows[-1]

    async def device_exists(self, device: Device) -> bool:
        async with self.database.transaction() as session:
            return await session.get(PushDevice, device.id) is not None

    async def registered_at(self, device: Device) -> datetime:
        async with self.database.transaction() as session:
            row = await session.get(PushDevice, device.id)
        assert row is not None
        return row.timestamp_created

    # Retries

    async def make_due(self) -> None:
        """Bring every planned retry forward to now, as if its wait had passed."""
        async with self.database.transaction() as session:
            await session.execute(
                update(PushMessage)
                .where(PushMessage.status == 0)
                .values(next_attempt_at=datetime.now(UTC))
            )

    async def run_worker(self) -> int:
        """One worker pass over the due messages; how many it handled."""
        worker = Worker(self.settings, self.database, self.app.state.context.registry)
        return await worker.run_once()

    # Programming and reading the fakes

    def program(
        self,
        device: Device,
        answer: str,
        *,
        retry_after: int | str | None = None,
        times: int | None = None,
        message: str | None = None,
    ) -> None:
        """Answer the device's next requests with an APNs reason, FCM errorCode or HMS code
        (APNs: the production host, where devices registered without an environment go)."""
        if device.platform == "ios":
            self.apns.program(device.token, answer, retry_after=retry_after, times=times)
        elif device.platform == "android":
            self.google.program(
                device.token, answer, retry_after=retry_after, times=times, message=message
            )
        else:
            self.hms.program(device.token, answer, retry_after=retry_after, times=times)

    def apns_requests(self, fake: ApnsFake | None = None) -> list[RecordedRequest]:
        return (fake or self.apns).requests(APNS_PATH)

    def fcm_requests(self) -> list[RecordedRequest]:
        return self.google.requests(FCM_PATH)

    def hms_requests(self) -> list[RecordedRequest]:
        return self.hms.requests(HMS_PATH)

    def requests_for(self, device: Device) -> list[RecordedRequest]:
        if device.platform == "ios":
            found = self.apns_requests() + self.apns_requests(self.sandbox)
        elif device.platform == "android":
            found = self.fcm_requests()
        else:
            found = self.hms_requests()
        return [request for request in found if request.token == device.token]

    def apns_jwt(self, request: RecordedRequest) -> tuple[Json, Json]:
        """The provider token's header and claims, its ES256 signature checked."""
        scheme, _, token = request.headers["authorization"].partition(" ")
        assert scheme == "bearer"
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(
            token,
            self.apns_key.private_key.public_key(),
            algorithms=["ES256"],
            options={"require": ["iss", "iat"], "verify_iat": False},
        )
        return header, claims


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["status"] == "OK", document
    return document.get("responseObject")


def error_of(response: httpx.Response, status: int, code: str) -> Json:
    assert response.status_code == status, response.text
    document = response.json()
    assert document["status"] == "ERROR", document
    error: Json = document["responseObject"]
    assert error["code"] == code, error
    return error


def apns_headers(request: RecordedRequest) -> dict[str, str]:
    """The request's ``apns-*`` headers, ``apns-id`` left out (it is checked on its own)."""
    return {
        name: value
        for name, value in request.headers.items()
        if name.startswith("apns-") and name != "apns-id"
    }
