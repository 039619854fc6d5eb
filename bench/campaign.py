"""Campaign delivery on PostgreSQL: from live send to done, the workers' memory and CPU.

For each size, a population shaped like a bank's: users with one to three phones (iOS and
Android alternating), every tenth user also registered on the previous user's first phone, so
some tokens belong to two users. The devices are written with one INSERT ... SELECT over
generate_series; the users are added to one campaign through the API (100,000 per call); the
campaign is sent live to running workers (`pushserver worker`).

Prints the time from live send to done, notifications/s, each worker's peak resident memory
(VmHWM) and where the CPU went (workers, server, fakes, the rest: mostly PostgreSQL). The fakes'
counts then show every token got the notification exactly once; with ``--kill-after`` one
worker is SIGKILLed that many seconds after the live send and the tokens delivered twice are
counted instead. The fakes run in their own process; their ceilings are printed first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery import (  # noqa: E402
    APP_ID,
    free_port,
    fresh_credentials,
    prepare,
    processes,
    server_env,
    wait_ready,
)
from tests.fakes.apns import device_token  # noqa: E402
from tests.fakes.ceiling import measure_apns, measure_fcm  # noqa: E402
from tests.fakes.process import FakeProcess  # noqa: E402

from pushserver.settings import Settings  # noqa: E402

USERS_PER_CALL = 100_000
TICKS = os.sysconf("SC_CLK_TCK")

# One row per (user, phone). Phone n is iOS when n is even; user u owns phones 3u .. 3u + u % 3
# and every tenth user also the previous user's first phone (3u - 3).
DEVICES_SQL = """
INSERT INTO push_device
    (activation_id, user_id, app_id, platform, push_token, timestamp_created, is_active,
     environment)
SELECT 'act-' || u || '-' || n, 'user-' || u, :app_id,
       CASE WHEN n % 2 = 0 THEN 'ios' ELSE 'android' END,
       CASE WHEN n % 2 = 0 THEN lpad(to_hex(n), 64, '0') ELSE 'fcm-' || n END,
       now(), true,
       CASE WHEN n % 2 = 0 THEN 'production' END
FROM generate_series(0, :users - 1) AS u
CROSS JOIN LATERAL (
    SELECT 3 * u + k AS n FROM generate_series(0, u % 3) AS k
    UNION ALL
    SELECT 3 * u - 3 WHERE u % 10 = 0 AND u > 0
) AS phones
"""


def phones(users: int) -> Iterator[int]:
    """The distinct phones of the first ``users`` users (the shared ones are among them)."""
    for user in range(users):
        yield from range(3 * user, 3 * user + user % 3 + 1)


def users_for(devices: int) -> int:
    """How many users own about ``devices`` distinct phones (two on average)."""
    return max(1, round(devices / 2))


def cpu_s(pid: int) -> float:
    """CPU seconds a process has used (user and system)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu_s() -> float:
    """CPU seconds the whole machine has used, idle and I/O wait left out."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(f) for i, f in enumerate(fields) if i not in (3, 4)) / TICKS


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def write_devices(url: str, users: int) -> None:
    engine = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with engine.connect() as conn:
        await conn.execute(text(DEVICES_SQL), {"app_id": APP_ID, "users": users})
        await conn.execute(text("VACUUM ANALYZE push_device"))
    await engine.dispose()


def one_run(
    fakes: FakeProcess,
    url: str,
    devices: int,
    worker_count: int,
    batch: int,
    lanes: int,
    kill_after: float | None,
) -> dict[str, float]:
    key, account = fresh_credentials(fakes)
    users = users_for(devices)
    with tempfile.TemporaryDirectory() as workdir:
        data_dir = Path(workdir)
        env = server_env(url, data_dir, fakes) | {
            "PUSH_SERVER_WORKER_ENABLED": "false",
            "PUSH_SERVER_WORKER_BATCH_SIZE": str(batch),
            "PUSH_SERVER_WORKER_LEASE_S": "30",
            "PUSH_SERVER_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
        settings = Settings(database_url=url, data_dir=data_dir, _env_file=None)
        admin_key = asyncio.run(prepare(settings, key, account, 0))
        started = time.perf_counter()
        asyncio.run(write_devices(settings.resolved_database_url, users))
        print(f"  {users:,} users' devices written in {time.perf_counter() - started:.1f} s")
        port = free_port()
        python = sys.executable
        serve = [python, "-m", "pushserver", "serve", "--port", str(port)]
        worker = [python, "-m", "pushserver", "worker", "--lanes", str(lanes)]
        with processes([serve], env, data_dir) as (server,):
            base_url = f"http://127.0.0.1:{port}"
            wait_ready(base_url)
            running = [subprocess.Popen(worker, env=env) for _ in range(worker_count)]
            try:
                result = asyncio.run(
                    campaign(base_url, admin_key, users, running, server, fakes.pid, kill_after)
                )
            finally:
                for process in running:
                    process.terminate()
                for process in running:
                    process.wait(timeout=60)
    ios = [device_token(n) for n in phones(users) if n % 2 == 0]
    android = [f"fcm-{n}" for n in phones(users) if n % 2 == 1]
    result["tokens"] = len(ios) + len(android)
    if kill_after is None:
        fakes.apns.assert_delivered_once(ios)
        fakes.google.assert_delivered_once(android)
        result["twice"] = 0
    else:
        counts = fakes.apns.counts() | fakes.google.counts()
        missing = (set(ios) | set(android)) - counts.keys()
        if missing:
            raise SystemExit(f"{len(missing)} tokens never got the notification")
        result["twice"] = sum(1 for n in counts.values() if n > 1)
    return result


async def campaign(
    base_url: str,
    key: str,
    users: int,
    workers: list[subprocess.Popen[bytes]],
    server: subprocess.Popen[bytes],
    fakes_pid: int,
    kill_after: float | None,
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600) as client:
        message = {"title": "Spring offer", "body": "0% fees in April"}
        created = await client.post(
            "/push/campaign/create", json={"requestObject": {"appId": APP_ID, "message": message}}
        )
        campaign_id = created.json()["responseObject"]["id"]
        started = time.perf_counter()
        for start in range(0, users, USERS_PER_CALL):
            names = [f"user-{u}" for u in range(start, min(users, start + USERS_PER_CALL))]
            response = await client.post(
                f"/push/campaign/{campaign_id}/user/add", json={"requestObject": names}
            )
            response.raise_for_status()
        print(f"  {users:,} users added through the API in {time.perf_counter() - started:.1f} s")

        pids = {"workers": [w.pid for w in workers], "server": [server.pid], "fakes": [fakes_pid]}
        cpu_before = {name: sum(cpu_s(p) for p in group) for name, group in pids.items()}
        machine_before = machine_cpu_s()
        started = time.perf_counter()
        (await client.post(f"/push/campaign/send/live/{campaign_id}")).raise_for_status()
        live_s = time.perf_counter() - started
        peak = 0.0
        killed = False
        # The campaign list is cheap to poll; the detail counts every device row.
        while not await is_sent(client, campaign_id):
            alive = [w.pid for w in workers if w.poll() is None]
            peak = max([peak, *(peak_rss_mib(pid) for pid in alive)])
            if kill_after is not None and not killed and time.perf_counter() - started > kill_after:
                workers[0].send_signal(signal.SIGKILL)
                workers[0].wait()
                killed = True
            await asyncio.sleep(0.5)
        alive = [w.pid for w in workers if w.poll() is None]
        peak = max([peak, *(peak_rss_mib(pid) for pid in alive)])
        pids["workers"] = alive
        cpu = {
            name: sum(cpu_s(p) for p in group) - cpu_before[name] for name, group in pids.items()
        }
        cpu["all"] = machine_cpu_s() - machine_before
        detail = (await client.get(f"/push/campaign/{campaign_id}/detail")).json()
    campaign = detail["responseObject"]
    # From the server's own timestamps: when the live send began and its last device was done.
    done_s = (
        datetime.fromisoformat(campaign["timestampSent"])
        - datetime.fromisoformat(campaign["timestampSending"])
    ).total_seconds()
    progress = campaign["progress"]
    if progress["sent"] != progress["total"]:
        raise SystemExit(f"campaign done with {progress}")
    return {
        "devices": progress["total"],
        "live_s": live_s,
        "done_s": done_s,
        "rate": progress["total"] / done_s,
        "peak_mib": peak,
        **{f"cpu_{name}": seconds for name, seconds in cpu.items()},
    }


async def is_sent(client: httpx.AsyncClient, campaign_id: int) -> bool:
    response = await client.get("/push/campaign/list", params={"all": "true"})
    campaigns = response.json()["responseObject"]
    return any(c["id"] == campaign_id and c["sent"] for c in campaigns)


def report(workers: int, runs: list[dict[str, float]], kill: bool, held: int) -> None:
    rate = statistics.median(r["rate"] for r in runs)
    # Less sensitive to what else the machine is doing than the rate.
    worker_us = statistics.median(1e6 * r["cpu_workers"] / r["devices"] for r in runs)
    last = runs[-1]
    done = "; ".join(f"{r['done_s']:.1f} s" for r in runs)
    cpu = (
        f"CPU seconds: workers {last['cpu_workers']:.0f}, server {last['cpu_server']:.0f}, "
        f"fakes {last['cpu_fakes']:.0f}, everything {last['cpu_all']:.0f} "
        f"of {2 * last['done_s']:.0f} available"
    )
    twice = ", ".join(f"{r['twice']:,.0f}" for r in runs)
    outcome = (
        f"one worker SIGKILLed; tokens delivered twice per run: {twice} (bound: the "
        f"{held:,} rows a worker holds at once), none missing"
        if kill
        else "every token delivered exactly once"
    )
    print(
        f"{last['devices']:,.0f} devices ({last['tokens']:,.0f} tokens checked), {workers} "
        f"worker(s): {rate:,.0f} notifications/s median of {len(runs)}, worker CPU "
        f"{worker_us:.0f} µs per notification; live send answered in "
        f"{last['live_s']:.1f} s, done after {done}; worker peak memory "
        f"{max(r['peak_mib'] for r in runs):.0f} MiB; {cpu}; {outcome}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated device counts")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--runs", type=int, default=1, help="runs per size and worker count")
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--lanes", type=int, default=2, help="batches in flight per worker")
    parser.add_argument("--kill-after", type=float, help="SIGKILL one worker after this many s")
    parser.add_argument(
        "--postgresql-url", default="postgresql+asyncpg://postgres@127.0.0.1:5432/pushserver_bench"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    worker_counts = [int(w) for w in args.workers.split(",")]

    with FakeProcess("apns", "google", counts_only=True) as fakes:
        print(measure_apns(fakes.apns, pid=fakes.pid), flush=True)
        print(measure_fcm(fakes.google, pid=fakes.pid), flush=True)
        for size in sizes:
            for workers in worker_counts:
                runs = [
                    one_run(
                        fakes,
                        args.postgresql_url,
                        size,
                        workers,
                        args.batch_size,
                        args.lanes,
                        args.kill_after,
                    )
                    for _ in range(args.runs)
                ]
                held = args.lanes * args.batch_size
                report(workers, runs, args.kill_after is not None, held)
                if any(run["twice"] > held for run in runs):
                    raise SystemExit(f"more tokens delivered twice than the {held:,} rows held")


if __name__ == "__main__":
    main()
