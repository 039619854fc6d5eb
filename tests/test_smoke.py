from __future__ import annotations

import httpx

from tests.conftest import auth
from pushserver.security.apikeys import Role


async def test_status(client: httpx.AsyncClient, keys: dict[Role, str]) -> None:
    response = await client.get("/push/service/status", headers=auth(keys[Role.SENDER]))
    assert response.status_code == 200, response.text
    assert response.json()["responseObject"]["applicationName"] == "push-server"
