"""The migrated schema holds the PowerAuth Push Server 2.0 tables with their exact columns."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect, text, types

from pushserver.db import migrations
from pushserver.db.engine import Database
from pushserver.db.models import Base

# The seed's tables and columns, as the original "Push Server Database" page lists them.
SEED_COLUMNS = {
    "push_device": [
        "id", "activation_id", "user_id", "app_id", "platform", "push_token",
        "timestamp_created", "is_active", "encryption_key", "encryption_key_index",
    ],
    "push_credential": [
        "id", "app_id", "ios_key_id", "ios_private_key", "ios_team_id", "ios_bundle",
        "android_server_key", "android_bundle",
    ],
    "push_message": [
        "id", "device_registration_id", "user_id", "activation_id", "silent", "personal",
        "encrypted", "message_body", "timestamp_created", "status",
    ],
    "push_campaign": ["id", "appid", "message", "sent", "timestamp_created", "timestamp_sent"],
    "push_campaign_user": ["id", "campaign_id", "user_id", "timestamp_created"],
    "push_campaign_device": [
        "id", "campaign_id", "platform", "token", "status", "timestamp_created",
    ],
}  # fmt: skip

INTEGER_COLUMNS = {"id", "app_id", "appid", "campaign_id", "device_registration_id", "status"}
TIMESTAMP_COLUMNS = {"timestamp_created", "timestamp_sent"}


def _columns(connection: Connection) -> dict[str, dict[str, Any]]:
    inspector = inspect(connection)
    return {
        table: {column["name"]: column for column in inspector.get_columns(table)}
        for table in inspector.get_table_names()
    }


async def test_seed_tables_and_columns_exist_with_their_names(database: Database) -> None:
    async with database.engine.connect() as conn:
        schema = await conn.run_sync(_columns)

    for table, seed_columns in SEED_COLUMNS.items():
        assert table in schema, f"missing table {table}"
        missing = [column for column in seed_columns if column not in schema[table]]
        assert not missing, f"{table} lacks {missing}"


async def test_seed_column_types(database: Database) -> None:
    async with database.engine.connect() as conn:
        schema = await conn.run_sync(_columns)

    for table, seed_columns in SEED_COLUMNS.items():
        for name in seed_columns:
            column_type = schema[table][name]["type"]
            if name == "user_id":
                assert isinstance(column_type, types.String), (table, column_type)
                assert column_type.length == 255, (table, column_type)
            elif name in INTEGER_COLUMNS:
                assert isinstance(column_type, types.Integer), (table, name, column_type)
            elif name in TIMESTAMP_COLUMNS:
                assert isinstance(column_type, types.DateTime), (table, name, column_type)
    assert schema["push_device"]["activation_id"]["type"].length == 37
    assert schema["push_device"]["push_token"]["type"].length == 255
    assert schema["push_campaign_device"]["token"]["type"].length == 255


async def test_database_is_at_the_newest_migration(database: Database) -> None:
    async with database.engine.connect() as conn:
        current = await conn.run_sync(migrations.current_revision)
    assert current == migrations.head_revision()
    await database.check_schema()


async def test_migrations_match_the_table_models(database: Database) -> None:
    def differences(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": False})
        return list(compare_metadata(context, Base.metadata))

    async with database.engine.connect() as conn:
        assert await conn.run_sync(differences) == []


def test_an_upgraded_sqlite_database_keeps_its_rows_and_never_reuses_an_id(tmp_path: Path) -> None:
    """0005 rebuilds SQLite's tables with AUTOINCREMENT keys; rows and indexes survive it."""
    engine = create_engine(f"sqlite:///{tmp_path / 'push.db'}")
    with engine.begin() as conn:
        migrations.upgrade(conn, "0004")
        for appid in (7, 8, 9):
            conn.execute(
                text(
                    "INSERT INTO push_campaign (appid, message, sent, timestamp_created) "
                    "VALUES (:appid, '{}', 0, CURRENT_TIMESTAMP)"
                ),
                {"appid": appid},
            )
        conn.execute(text("DELETE FROM push_campaign WHERE appid = 9"))
        migrations.upgrade(conn)
        rows = conn.execute(text("SELECT id, appid FROM push_campaign ORDER BY id")).all()
        assert [tuple(row) for row in rows] == [(1, 7), (2, 8)]
        conn.execute(
            text(
                "INSERT INTO push_campaign (appid, message, sent, timestamp_created) "
                "VALUES (10, '{}', 0, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(text("DELETE FROM push_campaign WHERE appid = 10"))
        conn.execute(
            text(
                "INSERT INTO push_campaign (appid, message, sent, timestamp_created) "
                "VALUES (11, '{}', 0, CURRENT_TIMESTAMP)"
            )
        )
        newest = conn.execute(text("SELECT id FROM push_campaign WHERE appid = 11")).scalar_one()
        assert newest == 4
        context = MigrationContext.configure(conn, opts={"compare_type": False})
        assert list(compare_metadata(context, Base.metadata)) == []
    engine.dispose()
