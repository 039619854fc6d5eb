"""Fixtures: a fake PowerAuth Server, and servers under test configured to ask it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from pushserver.app import create_app
from pushserver.settings import Settings
from tests.delivery.conftest import push
from tests.powerauth.fake import PowerAuthFake

__all__ = ["push"]

USERNAME = "push-server"
PASSWORD = "pa-secret-5a1d"
# The timeout of the server asking the fake: short, so a slow fake shows it quickly.
TIMEOUT_S = 1.0


@asynccontextmanager
async def serving(settings: Settings, **changes: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A server under test with ``changes`` to its settings, on the session's database."""
    application = create_app(settings.model_copy(update=changes))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://pushserver.test") as c:
            yield c


def powerauth_settings(url: str, password: str = PASSWORD) -> dict[str, Any]:
    return {
        "powerauth_url": url,
        "powerauth_username": USERNAME,
        "powerauth_password": SecretStr(password),
        "powerauth_timeout_s": TIMEOUT_S,
        "powerauth_connect_timeout_s": TIMEOUT_S,
    }


def closed_port_url() -> str:
    """A loopback URL where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def powerauth_session() -> Iterator[PowerAuthFake]:
    fake = PowerAuthFake(USERNAME, PASSWORD)
    yield fake
    fake.close()


@pytest.fixture
def powerauth(powerauth_session: PowerAuthFake) -> PowerAuthFake:
    """The fake PowerAuth Server, forgetting what earlier tests programmed and asked."""
    powerauth_session.reset()
    return powerauth_session


@pytest.fixture(scope="session")
async def pa_client(
    settings: Settings, powerauth_session: PowerAuthFake
) -> AsyncIterator[httpx.AsyncClient]:
    """The API of a server that asks the fake PowerAuth Server."""
    async with serving(settings, **powerauth_settings(powerauth_session.url)) as client:
        yield client
