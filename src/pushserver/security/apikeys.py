"""API keys: generated once, shown once, stored as SHA-256 hashes, each with one role."""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.db.models import PushApiKey

KEY_PREFIX = "psk_"


class Role(StrEnum):
    ADMIN = "admin"
    SENDER = "sender"
    REGISTRAR = "registrar"
    CALLBACK = "callback"


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: int | None
    name: str
    role: Role


@dataclass(frozen=True, slots=True)
class NewKey:
    id: int
    name: str
    role: Role
    secret: str


def hash_key(key: str) -> str:
    # The keys carry 256 random bits, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(key.encode()).hexdigest()


async def create_key(session: AsyncSession, role: Role, name: str) -> NewKey:
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    row = PushApiKey(name=name, role=role.value, key_hash=hash_key(secret), key_prefix=secret[:8])
    session.add(row)
    await session.flush()
    return NewKey(id=row.id, name=name, role=role, secret=secret)


async def list_keys(session: AsyncSession) -> list[PushApiKey]:
    return list((await session.scalars(select(PushApiKey).order_by(PushApiKey.id))).all())


async def revoke_key(session: AsyncSession, key_id: int) -> bool:
    result = await session.execute(delete(PushApiKey).where(PushApiKey.id == key_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


class KeyVerifier:
    """Resolves presented keys to principals, caching answers briefly to spare the database."""

    def __init__(self, cache_s: float) -> None:
        self._cache_s = cache_s
        self._cache: dict[str, tuple[float, Principal]] = {}

    async def verify(self, session: AsyncSession, key: str) -> Principal | None:
        digest = hash_key(key)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]

        row = await session.scalar(select(PushApiKey).where(PushApiKey.key_hash == digest))
        principal = Principal(row.id, row.name, Role(row.role)) if row is not None else None
        if principal is not None and self._cache_s > 0:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[digest] = (now + self._cache_s, principal)
        return principal
