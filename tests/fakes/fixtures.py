"""Pytest fixtures for the fake providers; import them into a conftest.py::

    from tests.fakes.fixtures import *  # noqa: F403

The servers start once per session on a background event loop (see ``runner.py``) and keep
their port, so settings built from their URLs stay valid; the function-scoped fixtures
(``apns_fake``, ``apns_sandbox_fake``, ``google_fake``, ``hms_fake``) reset the fake first, so
every test starts without recorded requests, programmed answers or faults. Credentials
registered at session start survive the reset.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .apns import ApnsFake, ApnsKey
from .google import GoogleFake, ServiceAccount
from .hms import HmsApp, HmsFake
from .runner import BackgroundLoop
from .tls import FakeCA

__all__ = [
    "apns_fake",
    "apns_fake_session",
    "apns_sandbox_fake",
    "apns_sandbox_fake_session",
    "fake_apns_key",
    "fake_ca",
    "fake_hms_app",
    "fake_loop",
    "fake_provider_env",
    "fake_service_account",
    "google_fake",
    "google_fake_session",
    "hms_fake",
    "hms_fake_session",
]


@pytest.fixture(scope="session")
def fake_ca(tmp_path_factory: pytest.TempPathFactory) -> FakeCA:
    """The CA every fake's certificate chains to; ``fake_ca.ca_file`` is the PEM to trust."""
    return FakeCA(Path(tmp_path_factory.mktemp("fake-ca")))


@pytest.fixture(scope="session")
def fake_loop() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.stop()


@pytest.fixture(scope="session")
def fake_apns_key() -> ApnsKey:
    """Accepted by both APNs fakes for topic ``com.example.app``; ``private_pem`` is the .p8."""
    return ApnsKey()


@pytest.fixture(scope="session")
def apns_fake_session(
    fake_ca: FakeCA, fake_loop: BackgroundLoop, fake_apns_key: ApnsKey
) -> Iterator[ApnsFake]:
    with ApnsFake(fake_ca, loop=fake_loop, environment="production") as fake:
        fake.add_key(fake_apns_key)
        yield fake


@pytest.fixture(scope="session")
def apns_sandbox_fake_session(
    fake_ca: FakeCA, fake_loop: BackgroundLoop, fake_apns_key: ApnsKey
) -> Iterator[ApnsFake]:
    with ApnsFake(fake_ca, loop=fake_loop, environment="development") as fake:
        fake.add_key(fake_apns_key)
        yield fake


@pytest.fixture(scope="session")
def google_fake_session(fake_ca: FakeCA, fake_loop: BackgroundLoop) -> Iterator[GoogleFake]:
    with GoogleFake(fake_ca, loop=fake_loop) as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_service_account(google_fake_session: GoogleFake) -> ServiceAccount:
    """Registered with the Google fake; its ``token_uri`` points there. ``info()`` gives the
    JSON key file a server stores."""
    account = ServiceAccount()
    google_fake_session.add_service_account(account)
    return account


@pytest.fixture(scope="session")
def hms_fake_session(fake_ca: FakeCA, fake_loop: BackgroundLoop) -> Iterator[HmsFake]:
    with HmsFake(fake_ca, loop=fake_loop) as fake:
        yield fake


@pytest.fixture(scope="session")
def fake_hms_app(hms_fake_session: HmsFake) -> HmsApp:
    app = HmsApp()
    hms_fake_session.add_app(app)
    return app


@pytest.fixture
def apns_fake(apns_fake_session: ApnsFake) -> ApnsFake:
    """Production APNs, reset for this test."""
    apns_fake_session.reset()
    return apns_fake_session


@pytest.fixture
def apns_sandbox_fake(apns_sandbox_fake_session: ApnsFake) -> ApnsFake:
    """Development (sandbox) APNs, reset for this test."""
    apns_sandbox_fake_session.reset()
    return apns_sandbox_fake_session


@pytest.fixture
def google_fake(
    google_fake_session: GoogleFake, fake_service_account: ServiceAccount
) -> GoogleFake:
    """Google OAuth + FCM with ``fake_service_account`` registered, reset for this test."""
    google_fake_session.reset()
    return google_fake_session


@pytest.fixture
def hms_fake(hms_fake_session: HmsFake, fake_hms_app: HmsApp) -> HmsFake:
    """Huawei token endpoint + Push Kit with ``fake_hms_app`` registered, reset for this test."""
    hms_fake_session.reset()
    return hms_fake_session


@pytest.fixture(scope="session")
def fake_provider_env(
    fake_ca: FakeCA,
    apns_fake_session: ApnsFake,
    apns_sandbox_fake_session: ApnsFake,
    google_fake_session: GoogleFake,
    hms_fake_session: HmsFake,
) -> dict[str, str]:
    """The server's provider settings (environment variable names) pointing at the fakes.
    The Google token endpoint is the service account's ``token_uri`` instead."""
    return {
        "PUSH_SERVER_APNS_PRODUCTION_URL": apns_fake_session.url,
        "PUSH_SERVER_APNS_DEVELOPMENT_URL": apns_sandbox_fake_session.url,
        "PUSH_SERVER_FCM_URL": google_fake_session.url,
        "PUSH_SERVER_HMS_URL": hms_fake_session.url,
        "PUSH_SERVER_HMS_TOKEN_URL": hms_fake_session.token_url,
        "PUSH_SERVER_PROVIDER_CA_FILE": str(fake_ca.ca_file),
    }
