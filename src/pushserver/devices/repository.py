"""Queries on ``push_device``."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.db.engine import take_sqlite_write_lock
from pushserver.db.models import PushDevice


async def lock_token(session: AsyncSession, app_id: int, token: str) -> None:
    """Hold other registrations of the token in the app until this transaction ends.

    A token new to the app has no row to lock, so without this two activations registering it
    at once would each insert their own row. MySQL and MariaDB need nothing here: the gap locks
    of ``matching`` already make such registrations wait or deadlock, and deadlocks are retried.
    """
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(_token_lock_key(app_id, token))))
    else:
        await take_sqlite_write_lock(session)


def _token_lock_key(app_id: int, token: str) -> int:
    digest = hashlib.blake2b(f"{app_id}:{token}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


async def matching(
    session: AsyncSession, app_id: int, activation_ids: Sequence[str], token: str
) -> list[PushDevice]:
    """Rows of the app holding any of the activations or the token, locked for the upsert."""
    query = (
        select(PushDevice)
        .where(
            PushDevice.app_id == app_id,
            or_(PushDevice.activation_id.in_(activation_ids), PushDevice.push_token == token),
        )
        .order_by(PushDevice.id)
        .with_for_update()
    )
    return list((await session.scalars(query)).all())


async def delete_token(session: AsyncSession, app_id: int, token: str) -> int:
    result = await session.execute(
        delete(PushDevice).where(PushDevice.app_id == app_id, PushDevice.push_token == token)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


async def set_active(session: AsyncSession, activation_id: str, active: bool) -> int:
    result = await session.execute(
        update(PushDevice).where(PushDevice.activation_id == activation_id).values(is_active=active)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
