"""Queries on ``push_device``."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.db.models import PushDevice


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
