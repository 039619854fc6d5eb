"""Fixtures: a migrated real database (SQLite, PostgreSQL or MariaDB) and the app on top of it.

The database comes from ``PUSH_SERVER_TEST_DATABASE_URL``; without it, a SQLite file in a
temporary directory. For PostgreSQL and MariaDB the named database is dropped and created anew
at the start of the session.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from sqlalchemy import delete, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from pushserver.app import create_app
from pushserver.db import migrations
from pushserver.db.engine import Database
from pushserver.db.models import Base
from pushserver.security import apikeys
from pushserver.security.apikeys import Role
from pushserver.settings import Settings
from tests.fakes.fixtures import *  # noqa: F403

TEST_MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def database_url(data_dir: Path) -> str:
    return os.environ.get("PUSH_SERVER_TEST_DATABASE_URL") or (
        f"sqlite+aiosqlite:///{data_dir / 'test.db'}"
    )


async def recreate_database(url: str) -> None:
    """Drop and create the server database named in ``url``; SQLite files start empty anyway."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return
    name = parsed.database
    assert name and name.replace("_", "").isalnum(), "test database name must be a plain identifier"
    admin_db = "postgres" if backend == "postgresql" else "mysql"
    admin = create_async_engine(parsed.set(database=admin_db), isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            if backend == "postgresql":
                await conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                await conn.execute(text(f'CREATE DATABASE "{name}"'))
            else:
                await conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))
                await conn.execute(
                    text(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
                )
    finally:
        await admin.dispose()


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await recreate_database(database_url)
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrations.upgrade)
    finally:
        await engine.dispose()
    return database_url


@pytest.fixture(scope="session")
def settings(migrated_url: str, data_dir: Path, fake_provider_env: dict[str, str]) -> Settings:
    """The server's settings: a migrated test database, providers at the loopback fakes.

    The app built from them runs no worker; a test that needs one starts it (``worker``).
    """
    providers = {
        name.removeprefix("PUSH_SERVER_").lower(): value
        for name, value in fake_provider_env.items()
    }
    return Settings(
        database_url=migrated_url,
        data_dir=data_dir,
        master_key=TEST_MASTER_KEY,
        api_key_cache_s=0,
        max_body_bytes=64 * 1024,
        worker_enabled=False,
        sync_send_timeout_s=5,
        provider_timeout_s=5,
        _env_file=None,
        **providers,
    )


@pytest.fixture(scope="session")
async def database(settings: Settings) -> AsyncIterator[Database]:
    db = Database(settings)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://pushserver.test") as http:
        yield http


@pytest.fixture(autouse=True)
async def _clean_tables(database: Database) -> None:
    """Every test starts from empty tables."""
    async with database.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            await session.execute(delete(table))


@pytest.fixture
async def keys(database: Database) -> dict[Role, str]:
    """One API key per role, as headers-ready strings."""
    created = {}
    async with database.transaction() as session:
        for role in Role:
            created[role] = (await apikeys.create_key(session, role, f"test {role.value}")).secret
    return created


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin(keys: dict[Role, str]) -> dict[str, str]:
    return auth(keys[Role.ADMIN])


async def table_rows(database: Database) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table, to show that a refused request changed nothing."""
    snapshot = {}
    async with database.engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            result = await conn.execute(select(table).order_by(*table.primary_key.columns))
            snapshot[table.name] = [dict(row._mapping) for row in result]
    return snapshot


# Provider credentials, made fresh for the session.


@pytest.fixture(scope="session")
def apns_p8() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@pytest.fixture(scope="session")
def rsa_private_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture(scope="session")
def service_account(rsa_private_pem: str) -> dict[str, str]:
    return {
        "type": "service_account",
        "project_id": "demo-bank",
        "private_key_id": "0123456789abcdef",
        "private_key": rsa_private_pem,
        "client_email": "push@demo-bank.iam.gserviceaccount.com",
        "client_id": "1234567890",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def b64json(document: Any) -> str:
    return b64(json.dumps(document))


@pytest.fixture
def captured_logs(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every log record of every logger, at DEBUG."""
    caplog.set_level("DEBUG")
    yield caplog
