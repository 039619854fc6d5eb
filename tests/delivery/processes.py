"""A `pushserver worker` process against the test database and the fake providers."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from pushserver.settings import Settings
from tests.conftest import TEST_MASTER_KEY

_serial = itertools.count()
_logs: dict[int, Path] = {}


def start_worker(
    settings: Settings, apns_url: str, data_dir: Path, batch_size: int = 100, lease_s: int = 5
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PUSH_SERVER_")} | {
        "PUSH_SERVER_DATABASE_URL": settings.resolved_database_url,
        "PUSH_SERVER_DATA_DIR": str(data_dir),
        "PUSH_SERVER_MASTER_KEY": TEST_MASTER_KEY,
        "PUSH_SERVER_APNS_PRODUCTION_URL": apns_url,
        "PUSH_SERVER_APNS_DEVELOPMENT_URL": apns_url,
        "PUSH_SERVER_PROVIDER_CA_FILE": str(settings.provider_ca_file),
        "PUSH_SERVER_WORKER_BATCH_SIZE": str(batch_size),
        "PUSH_SERVER_WORKER_LEASE_S": str(lease_s),
        "PUSH_SERVER_LOG_LEVEL": "WARNING",
    }
    # One lane: one claimed batch in flight, which bounds what a kill can leave half-sent.
    command = [sys.executable, "-m", "pushserver", "worker", "--lanes", "1"]
    # Logs go to a file: a pipe nobody reads would stop the worker once it filled up.
    log_path = data_dir / f"worker-{next(_serial)}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
    _logs[process.pid] = log_path
    return process


def worker_log(process: subprocess.Popen[bytes]) -> str:
    """What the worker logged so far."""
    return _logs[process.pid].read_text(errors="replace")
