"""A worker's claim costs a batch, not the campaign: it reads due rows in order from an index."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from pushserver.campaigns.delivery import due_rows
from pushserver.db.models import PushDevice
from tests.delivery.support import Push, ok
from tests.fakes.apns import device_token

DEVICES = 20_000
BATCH = 500
INDEX = "push_campaign_device_next_attempt_at_idx"


async def plan(conn: AsyncConnection) -> str:
    """The database's plan for a claim of ``BATCH`` rows, as text."""
    # Due time a minute ahead, so that every row of the campaign is due.
    query = due_rows(BATCH, datetime.now(UTC) + timedelta(minutes=1))
    sql = str(query.compile(conn.sync_connection, compile_kwargs={"literal_binds": True}))
    dialect = conn.dialect.name
    if dialect == "postgresql":
        result = await conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        return json.dumps(result.scalar_one())
    if dialect == "sqlite":
        result = await conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}")
        return "\n".join(str(row[-1]) for row in result)
    result = await conn.exec_driver_sql(f"EXPLAIN FORMAT=JSON {sql}")
    return str(result.scalar_one())


async def test_a_claim_reads_due_rows_from_the_index_right_after_a_live_send(push: Push) -> None:
    app_id = await push.create_app(android=False, huawei=False)
    now = datetime.now(UTC)
    async with push.database.transaction() as session:
        await session.execute(
            insert(PushDevice),
            [
                {
                    "activation_id": f"act-{n}",
                    "user_id": f"user-{n}",
                    "app_id": app_id,
                    "platform": "ios",
                    "push_token": device_token(n),
                    "timestamp_created": now,
                    "is_active": True,
                }
                for n in range(DEVICES)
            ],
        )
    created = await push.client.post(
        "/push/campaign/create",
        json={"requestObject": {"appId": app_id, "message": {"title": "Offer"}}},
        headers=push.sender,
    )
    campaign_id = ok(created)["id"]
    for start in range(0, DEVICES, 2000):  # the suite's server takes 64 KiB per body
        users = [f"user-{n}" for n in range(start, start + 2000)]
        ok(
            await push.client.post(
                f"/push/campaign/{campaign_id}/user/add",
                json={"requestObject": users},
                headers=push.sender,
            )
        )
    ok(await push.client.post(f"/push/campaign/send/live/{campaign_id}", headers=push.sender))

    async with push.database.engine.connect() as conn:
        if conn.dialect.name == "mysql":
            # InnoDB refreshes its statistics in the background; make that happen now.
            await conn.execute(text("ANALYZE TABLE push_campaign_device"))
        explained = await plan(conn)
        await conn.rollback()

    assert INDEX in explained, explained
    if conn.dialect.name == "postgresql":
        # Measured, not estimated: the scan stopped after one batch of the 20,000 rows.
        scans = [node for node in nodes(json.loads(explained)[0]["Plan"]) if "Index Name" in node]
        assert [(s["Index Name"], s["Actual Rows"]) for s in scans] == [(INDEX, BATCH)]
        assert not [n for n in nodes(json.loads(explained)[0]["Plan"]) if n["Node Type"] == "Sort"]


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)
