"""The PowerAuth Push Server 2.0 tables, with the columns this server adds.

Column names of the six original tables are kept exactly. Deviations and additions:

- every ``user_id`` is VARCHAR(255): user identifiers are strings throughout the API;
- booleans use the database's boolean type (TINYINT(1) on MySQL/MariaDB);
- ``push_device.environment``: the APNs environment of an iOS token;
- ``push_device``: one row per (app_id, activation_id), so concurrent registrations cannot
  create duplicates;
- ``push_credential``: one row per ``app_id``, plus ``ios_environment`` (APNs host for the app;
  NULL lets each device choose), ``android_private_key`` and ``android_project_id`` (the FCM
  HTTP v1 service-account JSON, encrypted, and its project), ``huawei_project_id``,
  ``huawei_client_id``, ``huawei_client_secret`` (encrypted), ``timestamp_created`` and
  ``timestamp_last_updated`` (running processes reload credentials when it changes).
  ``ios_private_key`` holds the .p8 key encrypted under the master key;
  ``android_server_key`` (the legacy FCM key) is kept for compatibility and never used;
- ``push_campaign_user`` is unique per (campaign_id, user_id) and ``push_campaign_device`` per
  (campaign_id, platform, token), which is what makes a campaign reach each device once;
- ``push_api_key``: API keys with their role, stored as SHA-256 hashes.

Revision ID: 0001
Revises:
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from pushserver.db.types import Identity64, LongBinary, LongText, UtcDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", Identity64, primary_key=True, autoincrement=True)


def _created() -> sa.Column[object]:
    return sa.Column("timestamp_created", UtcDateTime(), nullable=False)


def upgrade() -> None:
    op.create_table(
        "push_device",
        _id(),
        sa.Column("activation_id", sa.String(37), nullable=False),
        sa.Column("user_id", sa.String(255)),
        sa.Column("app_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(30), nullable=False),
        sa.Column("push_token", sa.String(255), nullable=False),
        _created(),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("encryption_key", sa.Text()),
        sa.Column("encryption_key_index", sa.Text()),
        sa.Column("environment", sa.String(20)),
        sa.UniqueConstraint("app_id", "activation_id", name="push_device_app_id_activation_id_uq"),
    )
    op.create_index("push_device_activation_id_idx", "push_device", ["activation_id"])
    op.create_index("push_device_app_id_push_token_idx", "push_device", ["app_id", "push_token"])
    op.create_index("push_device_app_id_user_id_idx", "push_device", ["app_id", "user_id"])

    op.create_table(
        "push_credential",
        _id(),
        sa.Column("app_id", sa.BigInteger(), nullable=False),
        sa.Column("ios_key_id", sa.String(255)),
        sa.Column("ios_private_key", LongBinary),
        sa.Column("ios_team_id", sa.String(255)),
        sa.Column("ios_bundle", sa.String(255)),
        sa.Column("android_server_key", sa.Text()),
        sa.Column("android_bundle", sa.String(255)),
        sa.Column("ios_environment", sa.String(20)),
        sa.Column("android_private_key", LongBinary),
        sa.Column("android_project_id", sa.String(255)),
        sa.Column("huawei_project_id", sa.String(255)),
        sa.Column("huawei_client_id", sa.String(255)),
        sa.Column("huawei_client_secret", LongBinary),
        _created(),
        sa.Column("timestamp_last_updated", UtcDateTime(), nullable=False),
        sa.UniqueConstraint("app_id", name="push_credential_app_id_uq"),
    )

    op.create_table(
        "push_message",
        _id(),
        sa.Column("device_registration_id", sa.BigInteger()),
        sa.Column("user_id", sa.String(255)),
        sa.Column("activation_id", sa.String(37)),
        sa.Column("silent", sa.Boolean(), nullable=False),
        sa.Column("personal", sa.Boolean(), nullable=False),
        sa.Column("encrypted", sa.Boolean(), nullable=False),
        sa.Column("message_body", LongText, nullable=False),
        _created(),
        sa.Column("status", sa.Integer(), nullable=False),
    )
    for column in ("device_registration_id", "user_id", "activation_id"):
        op.create_index(f"push_message_{column}_idx", "push_message", [column])

    op.create_table(
        "push_campaign",
        _id(),
        sa.Column("appid", sa.BigInteger(), nullable=False),
        sa.Column("message", LongText, nullable=False),
        sa.Column("sent", sa.Boolean(), nullable=False),
        _created(),
        sa.Column("timestamp_sent", UtcDateTime()),
    )
    op.create_index("push_campaign_appid_idx", "push_campaign", ["appid"])

    op.create_table(
        "push_campaign_user",
        _id(),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.String(255), nullable=False),
        _created(),
        sa.UniqueConstraint(
            "campaign_id", "user_id", name="push_campaign_user_campaign_id_user_id_uq"
        ),
    )
    op.create_index("push_campaign_user_campaign_id_idx", "push_campaign_user", ["campaign_id"])
    op.create_index("push_campaign_user_user_id_idx", "push_campaign_user", ["user_id"])

    op.create_table(
        "push_campaign_device",
        _id(),
        sa.Column("campaign_id", sa.BigInteger(), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("token", sa.String(255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        _created(),
        sa.UniqueConstraint(
            "campaign_id",
            "platform",
            "token",
            name="push_campaign_device_campaign_id_platform_token_uq",
        ),
    )
    op.create_index("push_campaign_device_campaign_id_idx", "push_campaign_device", ["campaign_id"])

    op.create_table(
        "push_api_key",
        _id(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_prefix", sa.String(16), nullable=False),
        _created(),
        sa.UniqueConstraint("key_hash", name="push_api_key_key_hash_uq"),
    )


def downgrade() -> None:
    for table in (
        "push_api_key",
        "push_campaign_device",
        "push_campaign_user",
        "push_campaign",
        "push_message",
        "push_credential",
        "push_device",
    ):
        op.drop_table(table)
