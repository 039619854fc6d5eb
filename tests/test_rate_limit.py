"""A configured rate per API key: 429 with Retry-After beyond it, before the body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import ValidationError

from pushserver.app import create_app
from pushserver.db.engine import Database
from pushserver.security.apikeys import Role
from pushserver.settings import Settings
from tests.conftest import auth, table_rows


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A server that admits three requests per key and minute."""
    server = create_app(settings.model_copy(update={"rate_limit": "3/minute"}))
    async with server.router.lifespan_context(server):
        transport = httpx.ASGITransport(app=server, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def test_a_key_over_its_rate_gets_429_and_changes_nothing(
    limited: httpx.AsyncClient, keys: dict[Role, str], database: Database
) -> None:
    admin = auth(keys[Role.ADMIN])
    for _ in range(3):
        assert (await limited.get("/push/service/status", headers=admin)).status_code == 200
    before = await table_rows(database)

    refused = await limited.post(
        "/admin/app/create", json={"requestObject": {"appId": 5}}, headers=admin
    )

    assert refused.status_code == 429
    assert refused.json()["status"] == "ERROR"
    assert refused.json()["responseObject"]["code"] == "ERROR_RATE_LIMITED"
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert await table_rows(database) == before
    # Another key has a rate of its own; the health probes have none.
    sender = auth(keys[Role.SENDER])
    assert (await limited.get("/push/service/status", headers=sender)).status_code == 200
    for _ in range(5):
        assert (await limited.get("/health/live")).status_code == 200


async def test_without_a_rate_nothing_is_limited(
    client: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    admin = auth(keys[Role.ADMIN])
    for _ in range(20):
        assert (await client.get("/push/service/status", headers=admin)).status_code == 200


@pytest.mark.parametrize("rate", ["lots", "10/fortnight", "-1/second"])
def test_a_rate_that_is_not_one_is_refused_at_start(rate: str) -> None:
    with pytest.raises(ValidationError, match="rate_limit"):
        Settings(rate_limit=rate, _env_file=None)
