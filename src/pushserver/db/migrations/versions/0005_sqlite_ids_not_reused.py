"""Ids are never handed out twice on SQLite.

SQLite gives a new row the highest id in use plus one, so once the newest campaign, device,
message or API key is deleted, the next one created gets its id back, and a client holding the
old id finds the new row behind it. Declared ``AUTOINCREMENT``, a key only grows. SQLite cannot
change a primary key in place, so each table is rebuilt with its rows, indexes and constraints;
the largest id ever used is carried over. PostgreSQL and MariaDB never reuse ids and are left
as they are.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "push_device",
    "push_credential",
    "push_message",
    "push_campaign",
    "push_campaign_user",
    "push_campaign_device",
    "push_api_key",
)


def _rebuild(autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
