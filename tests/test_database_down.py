"""With the database out of reach, callers get 503 in the envelope and the worker waits."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy.engine import make_url

from pushserver.db.engine import Database
from pushserver.delivery.registry import SenderRegistry
from pushserver.delivery.worker import Worker
from pushserver.errors import Unavailable
from pushserver.security.apikeys import Role
from pushserver.settings import Settings
from tests.conftest import auth


def unreachable(settings: Settings, tmp_url_dir: str) -> Settings:
    """The same kind of database, where none listens (for SQLite, a directory: no file opens)."""
    url = make_url(settings.resolved_database_url)
    if url.get_backend_name() == "sqlite":
        broken = url.set(database=tmp_url_dir)
    else:
        broken = url.set(host="127.0.0.1", port=1)
    return settings.model_copy(update={"database_url": broken.render_as_string(False)})


@pytest.fixture
def database_down(app: FastAPI, settings: Settings, tmp_path: object) -> Iterator[Database]:
    context = app.state.context
    working = context.database
    down = Database(unreachable(settings, str(tmp_path)))
    context.database = down
    try:
        yield down
    finally:
        context.database = working


async def test_requests_get_503_while_the_database_is_down(
    client: httpx.AsyncClient, keys: dict[Role, str], database_down: Database
) -> None:
    response = await client.get("/push/service/status", headers=auth(keys[Role.ADMIN]))
    assert response.status_code == 503
    assert response.json() == {
        "status": "ERROR",
        "responseObject": {"code": "ERROR_UNAVAILABLE", "message": "the database is unavailable"},
    }
    ready = await client.get("/health/ready")
    assert ready.status_code == 503
    assert ready.json()["responseObject"]["code"] == "ERROR_UNAVAILABLE"
    assert (await client.get("/health/live")).status_code == 200


async def test_the_worker_reports_the_database_unavailable_and_keeps_going(
    settings: Settings, tmp_path: object, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING")
    down = Database(unreachable(settings, str(tmp_path)))
    worker = Worker(settings, down, SenderRegistry(settings, down, None), lanes=1)  # type: ignore[arg-type]
    with pytest.raises(Unavailable):
        await worker.run_once()

    running = asyncio.create_task(worker.run())
    await asyncio.sleep(1.5)
    assert not running.done(), "the worker gave up"
    worker.stop()
    await asyncio.wait_for(running, 5)
    await down.dispose()
    warnings = [r.getMessage() for r in caplog.records if r.name == "pushserver.delivery.worker"]
    assert warnings.count("database unavailable; the worker will try again") >= 2
