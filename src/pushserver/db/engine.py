"""The async engine, units of work, and the schema version check."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, any_, bindparam, event, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import InstrumentedAttribute

from pushserver.db import migrations
from pushserver.errors import Unavailable
from pushserver.settings import Settings


class SchemaOutOfDate(Exception):
    """The database is not at the migration head this code needs."""


def create_engine(settings: Settings) -> AsyncEngine:
    url = make_url(settings.resolved_database_url)
    options: dict[str, Any] = {"pool_pre_ping": True}

    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, connect_args={"timeout": 30}, **options)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine

    options |= {"pool_size": settings.database_pool_size, "max_overflow": 10, "pool_recycle": 1800}
    return create_async_engine(url, **options)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


class Database:
    """One per process: owns the engine and hands out units of work."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_engine(settings)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A unit of work: committed when the block succeeds, rolled back otherwise."""
        try:
            async with self._sessions() as session, session.begin():
                yield session
        except (OSError, TimeoutError) as exc:
            # Some drivers let a refused or timed-out connection through unwrapped.
            raise Unavailable("the database is unavailable") from exc
        except DBAPIError as exc:
            if _is_unavailable(exc):
                raise Unavailable("the database is unavailable") from exc
            raise

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (OSError, DBAPIError):
            return False
        return True

    async def check_schema(self) -> None:
        async with self.engine.connect() as conn:
            current = await conn.run_sync(migrations.current_revision)
        head = migrations.head_revision()
        if current != head:
            raise SchemaOutOfDate(
                f"the database schema is at revision {current or 'none'} but this version "
                f"needs {head}: run `pushserver db upgrade`"
            )

    async def dispose(self) -> None:
        await self.engine.dispose()


# Serialization failures and deadlocks: the caller may run the unit of work again.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})
# The same on MariaDB/MySQL, whose driver gives the error number only: deadlock, lock wait timeout.
RETRYABLE_MYSQL_ERRORS = frozenset({1213, 1205})


def is_retryable(exc: DBAPIError) -> bool:
    """The transaction lost a deadlock or a serialization conflict and may simply run again."""
    if getattr(exc.orig, "sqlstate", None) in RETRYABLE_SQLSTATES:
        return True
    args: tuple[object, ...] = getattr(exc.orig, "args", ())
    return bool(args) and args[0] in RETRYABLE_MYSQL_ERRORS


def _is_unavailable(exc: DBAPIError) -> bool:
    """A lost or refused connection, or the server failing, as opposed to a bad statement."""
    if exc.connection_invalidated:
        return True
    return isinstance(exc, OperationalError) and not is_retryable(exc)


async def take_sqlite_write_lock(session: AsyncSession) -> None:
    """On SQLite, hold the database's one write lock from here, so what follows reads and
    writes current rows without another process slipping in between.

    A write that changes nothing takes the lock. The other databases lock the rows they read
    (FOR UPDATE) and need nothing here.
    """
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text("UPDATE push_message SET id = id WHERE 0"))


def id_among(
    session: AsyncSession, column: InstrumentedAttribute[int], ids: list[int]
) -> ColumnElement[bool]:
    """``column IN ids``, as one array parameter on PostgreSQL.

    A thousand ids expand to a thousand parameters elsewhere, which costs the worker more to
    render than the database to run; PostgreSQL takes the list whole (``= ANY($1)``).
    """
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, ids, type_=ARRAY(BigInteger)))
    return column.in_(ids)
