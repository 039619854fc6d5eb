"""End-to-end delivery: API calls to every row SENT, and the APNs sender alone.

For each database: 50,000 iOS and 50,000 Android devices, one ASYNCHRONOUS message each, sent
through `/push/message/batch/send` to a running server (`pushserver serve`, plus a
`pushserver worker` on PostgreSQL), timed from the first API call until every row is SENT. Then
the APNs sender alone, with no database and the message prepared in memory, sends 50,000
requests to the fake. The fake APNs's and FCM's own ceilings (h2load) are printed alongside.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.apns import ApnsKey, device_token  # noqa: E402
from tests.fakes.ceiling import measure_apns, measure_fcm  # noqa: E402
from tests.fakes.google import ServiceAccount  # noqa: E402
from tests.fakes.process import FakeProcess  # noqa: E402

from pushserver.applications import service as applications  # noqa: E402
from pushserver.applications.schemas import AndroidUpdateRequest, IosUpdateRequest  # noqa: E402
from pushserver.db import migrations  # noqa: E402
from pushserver.db.engine import Database  # noqa: E402
from pushserver.db.models import PushDevice, PushMessage  # noqa: E402
from pushserver.delivery.auth import ApnsToken  # noqa: E402
from pushserver.delivery.payloads import Notification  # noqa: E402
from pushserver.delivery.senders import ApnsSender, Device  # noqa: E402
from pushserver.delivery.transport import Pool, PoolConfig  # noqa: E402
from pushserver.security import apikeys  # noqa: E402
from pushserver.security.secretbox import SecretBox  # noqa: E402
from pushserver.settings import Settings  # noqa: E402

APP_ID = 1
MASTER_KEY = base64.b64encode(os.urandom(32)).decode()
BATCH = 1000
API_CONCURRENCY = 4


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def android_token(n: int) -> str:
    return f"fcm-bench-{n:08d}"


async def recreate(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return
    admin = create_async_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)'))
        await conn.execute(text(f'CREATE DATABASE "{parsed.database}"'))
    await admin.dispose()


async def prepare(settings: Settings, key: ApnsKey, account: ServiceAccount, devices: int) -> str:
    """Schema, application, credentials and devices; answers an admin API key."""
    await recreate(settings.resolved_database_url)
    database = Database(settings)
    async with database.engine.begin() as conn:
        await conn.run_sync(migrations.upgrade)

    box = SecretBox(base64.b64decode(MASTER_KEY))
    async with database.transaction() as session:
        admin = await apikeys.create_key(session, apikeys.Role.ADMIN, "bench")
        await applications.create(session, APP_ID)
        ios = IosUpdateRequest(
            app_id=APP_ID,
            bundle=key.topic,
            key_id=key.key_id,
            team_id=key.team_id,
            environment="production",
            private_key_base64=base64.b64encode(key.private_pem).decode(),
        )
        await applications.update_ios(session, box, ios)
        raw = base64.b64encode(json.dumps(account.info()).encode()).decode()
        await applications.update_android(
            session, box, AndroidUpdateRequest(app_id=APP_ID, private_key_base64=raw)
        )

    now = datetime.now(UTC)
    rows = []
    for n in range(devices):
        for platform, token in (("ios", device_token(n)), ("android", android_token(n))):
            rows.append(
                {
                    "activation_id": f"{platform[0]}-{n}",
                    "user_id": f"user-{platform}-{n}",
                    "app_id": APP_ID,
                    "platform": platform,
                    "push_token": token,
                    "timestamp_created": now,
                    "is_active": True,
                    "environment": "production" if platform == "ios" else None,
                }
            )
    async with database.transaction() as session:
        for start in range(0, len(rows), 10_000):
            await session.execute(insert(PushDevice), rows[start : start + 10_000])
    await database.dispose()
    return admin.secret


@contextmanager
def processes(
    commands: list[list[str]], env: dict[str, str], logs: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    running = []
    try:
        for index, command in enumerate(commands):
            log = (logs / f"process-{index}.log").open("w")
            running.append(subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT))
        yield running
    finally:
        for process in running:
            process.terminate()
        for process in running:
            process.wait(timeout=30)


async def count_sent(settings: Settings) -> int:
    engine = create_async_engine(settings.resolved_database_url)
    try:
        async with engine.connect() as conn:
            query = select(func.count()).select_from(PushMessage).where(PushMessage.status == 1)
            return int((await conn.execute(query)).scalar_one())
    finally:
        await engine.dispose()


async def drive(base_url: str, key: str, devices: int, settings: Settings) -> tuple[float, float]:
    """Queue one message per device through the API; seconds to queue, seconds to all SENT."""
    users = [f"user-ios-{n}" for n in range(devices)] + [
        f"user-android-{n}" for n in range(devices)
    ]
    batches = [users[i : i + BATCH] for i in range(0, len(users), BATCH)]
    headers = {"Authorization": f"Bearer {key}"}
    body = {"title": "Payment received", "body": "You received 120 EUR", "extras": {"id": 1}}
    semaphore = asyncio.Semaphore(API_CONCURRENCY)

    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=120) as client:

        async def send(batch: list[str]) -> None:
            messages = [{"userId": user, "body": body} for user in batch]
            request = {"appId": APP_ID, "mode": "ASYNCHRONOUS", "batch": messages}
            async with semaphore:
                response = await client.post(
                    "/push/message/batch/send", json={"requestObject": request}
                )
            response.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*(send(batch) for batch in batches))
        queued_s = time.perf_counter() - started

        total = len(users)
        deadline = time.monotonic() + 900
        while (sent := await count_sent(settings)) < total:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {sent} of {total} messages SENT after 15 minutes")
            await asyncio.sleep(0.2)
        return queued_s, time.perf_counter() - started


def wait_ready(base_url: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit("the server did not become ready")


def fresh_credentials(fakes: FakeProcess) -> tuple[ApnsKey, ServiceAccount]:
    """A new APNs key and Google service account, known to the fakes, whose counts are reset."""
    key = ApnsKey()
    fakes.apns.add_key(key)
    account = ServiceAccount(token_uri=f"{fakes.google.url}/token")
    fakes.google.add_service_account(account.info())
    fakes.apns.reset()
    fakes.google.reset()
    return key, account


def server_env(database_url: str, data_dir: Path, fakes: FakeProcess) -> dict[str, str]:
    """The environment of a `pushserver` process pointed at the fakes."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PUSH_SERVER_")} | {
        "PUSH_SERVER_DATABASE_URL": database_url,
        "PUSH_SERVER_DATA_DIR": str(data_dir),
        "PUSH_SERVER_MASTER_KEY": MASTER_KEY,
        "PUSH_SERVER_APNS_PRODUCTION_URL": fakes.apns.url,
        "PUSH_SERVER_APNS_DEVELOPMENT_URL": fakes.apns.url,
        "PUSH_SERVER_FCM_URL": fakes.google.url,
        "PUSH_SERVER_PROVIDER_CA_FILE": fakes.ca_file,
        "PUSH_SERVER_LOG_LEVEL": "WARNING",
    }


def end_to_end(
    database: str, url: str, fakes: FakeProcess, devices: int, workers: int
) -> dict[str, float]:
    key, account = fresh_credentials(fakes)
    with tempfile.TemporaryDirectory() as workdir:
        data_dir = Path(workdir)
        database_url = (
            url if database != "sqlite" else f"sqlite+aiosqlite:///{data_dir / 'bench.db'}"
        )
        env = server_env(database_url, data_dir, fakes)
        settings = Settings(database_url=database_url, data_dir=data_dir, _env_file=None)
        admin_key = asyncio.run(prepare(settings, key, account, devices))

        port = free_port()
        python = sys.executable
        commands = [[python, "-m", "pushserver", "serve", "--port", str(port)]]
        if database != "sqlite":
            env["PUSH_SERVER_WORKER_ENABLED"] = "false"
            commands += [[python, "-m", "pushserver", "worker"]] * workers
        base_url = f"http://127.0.0.1:{port}"
        with processes(commands, env, data_dir):
            wait_ready(base_url)
            queued_s, done_s = asyncio.run(drive(base_url, admin_key, devices, settings))

    tokens = [device_token(n) for n in range(devices)]
    fakes.apns.assert_delivered_once(tokens)
    fakes.google.assert_delivered_once(android_token(n) for n in range(devices))
    total = 2 * devices
    return {"total": total, "queued_s": queued_s, "done_s": done_s, "rate": total / done_s}


async def sender_alone(fakes: FakeProcess, requests: int) -> float:
    """Requests/s of the APNs sender with everything prepared in memory."""
    key = ApnsKey()
    fakes.apns.add_key(key)
    defaults = Settings(_env_file=None)
    pool = Pool(
        PoolConfig(
            connections=defaults.apns_connections,
            streams_per_connection=defaults.apns_streams_per_connection,
            connect_timeout_s=5,
            timeout_s=30,
            ca_file=Path(fakes.ca_file),
            http2_only=True,
        )
    )
    urls = {"production": fakes.apns.url, "development": fakes.apns.url}
    token = ApnsToken(key.private_pem, key.key_id, key.team_id, defaults.apns_token_ttl_s)
    sender = ApnsSender(
        token, key.topic, "production", {"production": pool, "development": pool}, urls
    )
    notification = Notification(title="Payment received", body="You received 120 EUR")
    prepared = sender.prepare(notification, datetime.now(UTC))
    devices = iter([Device(n + 1, device_token(n)) for n in range(requests)])
    in_flight = defaults.apns_connections * defaults.apns_streams_per_connection

    async def lane() -> int:
        sent = 0
        for device in devices:
            outcome = await sender.send(prepared, device)
            sent += outcome.verdict.value == "sent"
        return sent

    fakes.apns.reset()
    started = time.perf_counter()
    sent = sum(await asyncio.gather(*(lane() for _ in range(in_flight))))
    elapsed = time.perf_counter() - started
    await pool.close()
    if sent != requests:
        raise SystemExit(f"the sender got {sent} successes for {requests} requests")
    return requests / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--devices", type=int, default=50_000, help="per platform")
    parser.add_argument("--runs", type=int, default=1, help="end-to-end runs per database")
    parser.add_argument("--sender-requests", type=int, default=50_000)
    parser.add_argument("--sender-runs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (PostgreSQL)")
    parser.add_argument(
        "--postgresql-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/pushserver_bench"
    )
    args = parser.parse_args()
    databases = ["sqlite", "postgresql"] if args.database == "both" else [args.database]

    import uvloop

    with FakeProcess("apns", "google", counts_only=True) as fakes:
        ceiling = measure_apns(fakes.apns, pid=fakes.pid)
        print(ceiling, flush=True)
        print(measure_fcm(fakes.google, pid=fakes.pid), flush=True)

        rates = [
            uvloop.run(sender_alone(fakes, args.sender_requests)) for _ in range(args.sender_runs)
        ]
        median = statistics.median(rates)
        print(
            f"APNs sender alone: {median:,.0f} requests/s median of {len(rates)} "
            f"({', '.join(f'{r:,.0f}' for r in rates)}); "
            f"{median / ceiling.requests_per_second:.0%} of the fake's ceiling",
            flush=True,
        )

        for database in databases:
            results = [
                end_to_end(database, args.postgresql_url, fakes, args.devices, args.workers)
                for _ in range(args.runs)
            ]
            rate = statistics.median(r["rate"] for r in results)
            last = results[-1]
            print(
                f"{database}: {last['total']:,} notifications, API calls to all SENT: "
                f"{rate:,.0f} notifications/s median of {len(results)} "
                f"(last run: queued in {last['queued_s']:.1f} s, all SENT after "
                f"{last['done_s']:.1f} s); every token delivered exactly once",
                flush=True,
            )


if __name__ == "__main__":
    main()
