"""Column types that behave the same on SQLite, PostgreSQL and MySQL/MariaDB."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, Integer, LargeBinary, Text
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments a column declared exactly INTEGER PRIMARY KEY.
Identity64 = BigInteger().with_variant(Integer(), "sqlite")

# MySQL's TEXT stops at 64 KiB; message bodies and keys stay far below, but campaign messages
# and service-account JSON are safer in MEDIUMTEXT / MEDIUMBLOB.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")
LongBinary = LargeBinary().with_variant(mysql.MEDIUMBLOB(), "mysql", "mariadb")


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC with microseconds; always hands back aware UTC datetimes."""

    impl = DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(DateTime(timezone=False))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
