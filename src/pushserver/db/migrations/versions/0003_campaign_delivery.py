"""Delivery state for campaigns.

Added columns:

- ``push_campaign.timestamp_sending``: when the live send began; a campaign with it set cannot
  be sent live again or get users added. ``sent`` becomes true only when every device row of
  the campaign is final (SENT or FAILED), with ``timestamp_sent`` then;
- ``push_campaign_device.environment``: the APNs environment of an iOS token;
  ``attempts``, ``next_attempt_at`` (due time, or the end of a worker's lease while the row is
  SENDING), ``last_error``, ``timestamp_last_attempt``: as on ``push_message``. ``status`` is
  0 PENDING, 2 SENDING (claimed by a worker), 1 SENT, -1 FAILED;
- indexes (``status``, ``next_attempt_at``) on ``push_campaign_device`` for the workers' claims
  and (``campaign_id``, ``status``) for progress and the completion check.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pushserver.db.types import UtcDateTime

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("push_campaign") as table:
        table.add_column(sa.Column("timestamp_sending", UtcDateTime()))
    with op.batch_alter_table("push_campaign_device") as table:
        table.add_column(sa.Column("environment", sa.String(20)))
        table.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        table.add_column(sa.Column("next_attempt_at", UtcDateTime()))
        table.add_column(sa.Column("last_error", sa.String(1000)))
        table.add_column(sa.Column("timestamp_last_attempt", UtcDateTime()))
    op.create_index(
        "push_campaign_device_status_next_attempt_at_idx",
        "push_campaign_device",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "push_campaign_device_campaign_id_status_idx",
        "push_campaign_device",
        ["campaign_id", "status"],
    )


def downgrade() -> None:
    op.drop_index("push_campaign_device_campaign_id_status_idx", "push_campaign_device")
    op.drop_index("push_campaign_device_status_next_attempt_at_idx", "push_campaign_device")
    with op.batch_alter_table("push_campaign_device") as table:
        for column in (
            "timestamp_last_attempt",
            "last_error",
            "next_attempt_at",
            "attempts",
            "environment",
        ):
            table.drop_column(column)
    with op.batch_alter_table("push_campaign") as table:
        table.drop_column("timestamp_sending")
