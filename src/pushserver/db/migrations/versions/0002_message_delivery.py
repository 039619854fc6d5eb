"""Delivery state on push_message.

Added columns, all on ``push_message``:

- ``app_id``, ``platform``, ``push_token``, ``environment``: where the message goes, copied from
  the device when the message is created, so the log stays right after the device changes;
- ``priority``: HIGH or NORMAL as requested; ``valid_until``: from the body, never sent after it;
- ``attempts``: delivery attempts so far; ``last_error``: the last provider answer that was not
  a success;
- ``next_attempt_at``: while PENDING, when the message is due; while a worker holds it, the end
  of that worker's lease (a crashed worker's messages come back when it passes);
- ``timestamp_last_attempt``, ``timestamp_sent``;
- index (``status``, ``next_attempt_at``) for the workers' claims.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pushserver.db.types import UtcDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("push_message") as table:
        table.add_column(sa.Column("app_id", sa.BigInteger()))
        table.add_column(sa.Column("platform", sa.String(30)))
        table.add_column(sa.Column("push_token", sa.String(255)))
        table.add_column(sa.Column("environment", sa.String(20)))
        table.add_column(sa.Column("priority", sa.String(10)))
        table.add_column(sa.Column("valid_until", UtcDateTime()))
        table.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("next_attempt_at", UtcDateTime()))
        table.add_column(sa.Column("last_error", sa.String(1000)))
        table.add_column(sa.Column("timestamp_last_attempt", UtcDateTime()))
        table.add_column(sa.Column("timestamp_sent", UtcDateTime()))
    op.create_index(
        "push_message_status_next_attempt_at_idx", "push_message", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("push_message_status_next_attempt_at_idx", "push_message")
    with op.batch_alter_table("push_message") as table:
        for column in (
            "timestamp_sent",
            "timestamp_last_attempt",
            "last_error",
            "next_attempt_at",
            "attempts",
            "valid_until",
            "priority",
            "environment",
            "push_token",
            "platform",
            "app_id",
        ):
            table.drop_column(column)
