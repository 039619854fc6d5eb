"""Queries on ``push_credential``, the table of applications."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.db.models import PushCredential


async def get(
    session: AsyncSession, app_id: int, *, for_update: bool = False
) -> PushCredential | None:
    query = select(PushCredential).where(PushCredential.app_id == app_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def exists(session: AsyncSession, app_id: int) -> bool:
    found = await session.scalar(select(PushCredential.id).where(PushCredential.app_id == app_id))
    return found is not None


async def list_all(session: AsyncSession) -> list[PushCredential]:
    return list(
        (await session.scalars(select(PushCredential).order_by(PushCredential.app_id))).all()
    )
