"""Queries for sending: the devices a message reaches, and the message log."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.db.models import PushDevice, PushMessage

_CHUNK = 500


async def devices_of_users(
    session: AsyncSession, app_id: int, user_ids: Iterable[str]
) -> list[Row[Any]]:
    users = sorted(set(user_ids))
    rows: list[Row[Any]] = []
    for start in range(0, len(users), _CHUNK):
        query = (
            select(
                PushDevice.id,
                PushDevice.activation_id,
                PushDevice.user_id,
                PushDevice.platform,
                PushDevice.push_token,
                PushDevice.environment,
                PushDevice.is_active,
            )
            .where(
                PushDevice.app_id == app_id, PushDevice.user_id.in_(users[start : start + _CHUNK])
            )
            .order_by(PushDevice.id)
        )
        rows.extend((await session.execute(query)).all())  # type: ignore[arg-type]
    return rows


async def insert_messages(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert message rows; their ids in the order given."""
    if not rows:
        return []
    statement = insert(PushMessage).returning(PushMessage.id, sort_by_parameter_order=True)
    return list((await session.scalars(statement, list(rows))).all())


async def get(session: AsyncSession, message_id: int) -> PushMessage | None:
    return await session.get(PushMessage, message_id)
