"""Campaign delivery on PostgreSQL: from live send to done, and the worker's memory.

For each size: that many users with one iOS or Android device each (alternating), one
campaign to all of them, sent live through the API to running workers (`pushserver worker`).
Prints the time from live send to done, notifications/s, and each worker's peak resident memory
(VmHWM). The fakes run in their own process; their ceilings are printed first.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.delivery import (  # noqa: E402
    MASTER_KEY,
    android_token,
    free_port,
    prepare,
    processes,
    wait_ready,
)
from tests.fakes.apns import ApnsKey, device_token  # noqa: E402
from tests.fakes.ceiling import measure_apns, measure_fcm  # noqa: E402
from tests.fakes.google import ServiceAccount  # noqa: E402
from tests.fakes.process import FakeProcess  # noqa: E402

from pushserver.settings import Settings  # noqa: E402

USERS_PER_CALL = 100_000


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_size(
    fakes: FakeProcess, url: str, users: int, worker_count: int, batch: int
) -> dict[str, float]:
    key = ApnsKey()
    fakes.apns.add_key(key)
    account = ServiceAccount(token_uri=f"{fakes.google.url}/token")
    fakes.google.add_service_account(account.info())
    fakes.apns.reset()
    fakes.google.reset()
    with tempfile.TemporaryDirectory() as workdir:
        data_dir = Path(workdir)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PUSH_SERVER_")} | {
            "PUSH_SERVER_DATABASE_URL": url,
            "PUSH_SERVER_DATA_DIR": str(data_dir),
            "PUSH_SERVER_MASTER_KEY": MASTER_KEY,
            "PUSH_SERVER_APNS_PRODUCTION_URL": fakes.apns.url,
            "PUSH_SERVER_APNS_DEVELOPMENT_URL": fakes.apns.url,
            "PUSH_SERVER_FCM_URL": fakes.google.url,
            "PUSH_SERVER_PROVIDER_CA_FILE": fakes.ca_file,
            "PUSH_SERVER_LOG_LEVEL": "WARNING",
            "PUSH_SERVER_WORKER_ENABLED": "false",
            "PUSH_SERVER_WORKER_BATCH_SIZE": str(batch),
            "PUSH_SERVER_MAX_BODY_BYTES": str(64 * 1024 * 1024),
        }
        settings = Settings(database_url=url, data_dir=data_dir, _env_file=None)
        # Half the users on iOS, half on Android, one device each (`prepare` makes both kinds).
        admin_key = asyncio.run(prepare(settings, key, account, users // 2))
        port = free_port()
        python = sys.executable
        serve = [python, "-m", "pushserver", "serve", "--port", str(port)]
        worker = [python, "-m", "pushserver", "worker"]
        with processes([serve], env, data_dir):
            base_url = f"http://127.0.0.1:{port}"
            wait_ready(base_url)
            running = [subprocess.Popen(worker, env=env) for _ in range(worker_count)]
            try:
                names = [f"user-ios-{n}" for n in range(users // 2)]
                names += [f"user-android-{n}" for n in range(users // 2)]
                result = asyncio.run(
                    run_named_campaign(base_url, admin_key, names, [p.pid for p in running])
                )
            finally:
                for process in running:
                    process.terminate()
                for process in running:
                    process.wait(timeout=60)
    fakes.apns.assert_delivered_once(device_token(n) for n in range(users // 2))
    fakes.google.assert_delivered_once(android_token(n) for n in range(users // 2))
    return result


async def run_named_campaign(
    base_url: str, key: str, names: list[str], workers: list[int]
) -> dict[str, float]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=600) as client:
        message = {"title": "Spring offer", "body": "0% fees in April"}
        created = await client.post(
            "/push/campaign/create", json={"requestObject": {"appId": 1, "message": message}}
        )
        campaign_id = created.json()["responseObject"]["id"]
        for start in range(0, len(names), USERS_PER_CALL):
            response = await client.post(
                f"/push/campaign/{campaign_id}/user/add",
                json={"requestObject": names[start : start + USERS_PER_CALL]},
            )
            response.raise_for_status()

        started = time.perf_counter()
        (await client.post(f"/push/campaign/send/live/{campaign_id}")).raise_for_status()
        live_s = time.perf_counter() - started
        peak = 0.0
        while True:
            detail = (await client.get(f"/push/campaign/{campaign_id}/detail")).json()
            peak = max([peak, *(peak_rss_mib(pid) for pid in workers)])
            if detail["responseObject"]["sent"]:
                break
            await asyncio.sleep(0.5)
        done_s = time.perf_counter() - started
    progress = detail["responseObject"]["progress"]
    return {
        "devices": progress["total"],
        "sent": progress["sent"],
        "live_s": live_s,
        "done_s": done_s,
        "rate": progress["total"] / done_s,
        "peak_mib": peak,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="100000,1000000", help="comma-separated device counts")
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts")
    parser.add_argument("--batch-size", type=int, default=1000)
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
                result = one_size(fakes, args.postgresql_url, size, workers, args.batch_size)
                print(
                    f"{result['devices']:,.0f} devices, {workers} worker(s): live send answered "
                    f"in {result['live_s']:.1f} s, done after {result['done_s']:.1f} s, "
                    f"{result['rate']:,.0f} notifications/s, worker peak memory "
                    f"{result['peak_mib']:.0f} MiB; every token delivered exactly once",
                    flush=True,
                )


if __name__ == "__main__":
    main()
