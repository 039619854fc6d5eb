"""Fixtures of the end-to-end delivery tests: the API, its database and the fake providers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from pushserver.db.engine import Database
from pushserver.security.apikeys import Role
from pushserver.settings import Settings
from tests.conftest import auth
from tests.delivery.support import Push
from tests.fakes.apns import ApnsFake, ApnsKey
from tests.fakes.google import GoogleFake, ServiceAccount
from tests.fakes.hms import HmsApp, HmsFake


@pytest.fixture
async def push(
    client: httpx.AsyncClient,
    app: FastAPI,
    database: Database,
    settings: Settings,
    keys: dict[Role, str],
    apns_fake: ApnsFake,
    apns_sandbox_fake: ApnsFake,
    google_fake: GoogleFake,
    hms_fake: HmsFake,
    fake_apns_key: ApnsKey,
    fake_service_account: ServiceAccount,
    fake_hms_app: HmsApp,
) -> Push:
    return Push(
        client=client,
        app=app,
        database=database,
        settings=settings,
        admin=auth(keys[Role.ADMIN]),
        sender=auth(keys[Role.SENDER]),
        registrar=auth(keys[Role.REGISTRAR]),
        apns=apns_fake,
        sandbox=apns_sandbox_fake,
        google=google_fake,
        hms=hms_fake,
        apns_key=fake_apns_key,
        account=fake_service_account,
        hms_app=fake_hms_app,
    )
