"""Campaign claims by due time alone.

A row waiting to be sent (PENDING) or held by a worker (SENDING) has ``next_attempt_at`` set;
a final one (SENT, FAILED) has it NULL. Workers claim rows with ``next_attempt_at <= now``
ordered by it, which an index on ``next_attempt_at`` alone serves as a range scan that stops
at the batch size. The (``status``, ``next_attempt_at``) index it replaces could not serve
``status IN (PENDING, SENDING)`` in that order, so every claim read and sorted all of the
campaign's remaining rows.

The index on ``campaign_id`` alone goes too: the unique (``campaign_id``, ``platform``,
``token``) and the (``campaign_id``, ``status``) indexes lead with it, and every row a worker
updates paid for one more index entry.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "push_campaign_device_next_attempt_at_idx", "push_campaign_device", ["next_attempt_at"]
    )
    op.drop_index("push_campaign_device_status_next_attempt_at_idx", "push_campaign_device")
    op.drop_index("push_campaign_device_campaign_id_idx", "push_campaign_device")


def downgrade() -> None:
    op.create_index("push_campaign_device_campaign_id_idx", "push_campaign_device", ["campaign_id"])
    op.create_index(
        "push_campaign_device_status_next_attempt_at_idx",
        "push_campaign_device",
        ["status", "next_attempt_at"],
    )
    op.drop_index("push_campaign_device_next_attempt_at_idx", "push_campaign_device")
