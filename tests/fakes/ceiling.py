"""The fakes' own ceiling: how many requests/s a C load generator (h2load) gets answered.

A benchmark states this figure next to its own so a reader can tell whether the server or the
fake was the limit. ``python -m tests.fakes.ceiling`` starts the fakes in a separate process and
prints the figures; :func:`measure` does the same against a fake a benchmark already runs.
h2load comes from Debian's ``nghttp2-client`` package.

Every request is a valid one that the fake fully checks (provider token, headers, payload) and
answers with success; the APNs run spreads the requests over many device tokens so the path
header changes as it does for a real campaign.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shlex
import shutil
import ssl
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from .apns import ApnsControls, ApnsKey, device_token
from .google import JWT_BEARER, GoogleControls, ServiceAccount
from .hms import HmsApp, HmsControls
from .process import FakeProcess

APNS_PAYLOAD = {
    "aps": {"alert": {"title": "Payment received", "body": "You received 120.00 EUR"}},
    "sound": "default",
    "messageId": "4f9a2c1e",
}


@dataclass
class Ceiling:
    provider: str
    requests: int
    succeeded: int
    failed: int
    seconds: float
    requests_per_second: float
    command: str
    fake_cpu_seconds: float | None = None

    def __str__(self) -> str:
        cpu = ""
        if self.fake_cpu_seconds is not None and self.seconds:
            cpu = f", fake at {self.fake_cpu_seconds / self.seconds:.0%} of a core"
        return (
            f"{self.provider} fake ceiling: {self.requests_per_second:,.0f} requests/s "
            f"({self.succeeded:,} succeeded, {self.failed:,} failed in {self.seconds:.2f} s{cpu})"
        )


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def run_h2load(
    provider: str,
    targets: list[str],
    headers: dict[str, str],
    body: bytes,
    *,
    requests: int,
    connections: int,
    streams: int,
    pid: int | None = None,
    workdir: Path,
) -> Ceiling:
    h2load = shutil.which("h2load")
    if h2load is None:
        raise RuntimeError("h2load not found: apt-get install -y nghttp2-client")
    body_file = workdir / f"{provider}-body.json"
    body_file.write_bytes(body)
    command = [
        h2load,
        "-n",
        str(requests),
        "-c",
        str(connections),
        "-m",
        str(streams),
    ]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    command += ["-d", str(body_file)]
    if len(targets) == 1:
        command.append(targets[0])
    else:
        uri_file = workdir / f"{provider}-uris.txt"
        uri_file.write_text("\n".join(targets) + "\n")
        command += ["-i", str(uri_file)]
    cpu_before = _cpu_seconds(pid)
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=600)
    cpu_after = _cpu_seconds(pid)
    output = result.stdout
    finished = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", output)
    counts = re.search(
        r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", output
    )
    if result.returncode != 0 or finished is None or counts is None:
        raise RuntimeError(f"h2load failed ({result.returncode}):\n{output}\n{result.stderr}")
    seconds = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    shown = [re.sub(r"(?i)(authorization: bearer) \S+", r"\1 <token>", part) for part in command]
    return Ceiling(
        provider=provider,
        requests=requests,
        succeeded=int(counts.group(1)),
        failed=int(counts.group(2)),
        seconds=seconds,
        requests_per_second=float(finished.group(3)),
        command=shlex.join(shown),
        fake_cpu_seconds=(
            None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
        ),
    )


def _post_form(url: str, ca_file: str, form: dict[str, str]) -> Any:
    parts = urlsplit(url)
    context = ssl.create_default_context(cafile=ca_file)
    conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=context)
    try:
        conn.request(
            "POST",
            parts.path,
            body=urlencode(form),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        response = conn.getresponse()
        document = json.loads(response.read())
    finally:
        conn.close()
    if response.status != 200:
        raise RuntimeError(f"token request failed: {response.status} {document}")
    return document


def measure_apns(
    fake: ApnsControls,
    *,
    requests: int = 100_000,
    connections: int = 4,
    streams: int = 100,
    tokens: int = 10_000,
    pid: int | None = None,
) -> Ceiling:
    """Register a key on ``fake`` (in-process or remote), load it, leave its counts reset."""
    url = fake.url
    key = ApnsKey(key_id="CEILING001", team_id="CEILINGTEA", topics=("com.example.ceiling",))
    fake.add_key(key)
    fake.reset()
    fake.record_bodies(False)
    headers = {
        "authorization": f"bearer {key.jwt()}",
        "apns-topic": key.topic,
        "apns-push-type": "alert",
        "apns-priority": "10",
        "apns-expiration": "0",
    }
    targets = [f"{url}/3/device/{device_token(i)}" for i in range(max(1, tokens))]
    with tempfile.TemporaryDirectory() as workdir:
        ceiling = run_h2load(
            "APNs",
            targets,
            headers,
            json.dumps(APNS_PAYLOAD).encode(),
            requests=requests,
            connections=connections,
            streams=streams,
            pid=pid,
            workdir=Path(workdir),
        )
    delivered = sum(fake.counts().values())
    if delivered != ceiling.succeeded:
        raise RuntimeError(f"h2load saw {ceiling.succeeded} successes, the fake {delivered}")
    fake.reset()
    return ceiling


def measure_fcm(
    fake: GoogleControls,
    *,
    requests: int = 50_000,
    connections: int = 4,
    streams: int = 100,
    pid: int | None = None,
) -> Ceiling:
    url = fake.url
    account = ServiceAccount(project_id="ceiling", client_email="ceiling@ceiling.iam.example")
    fake.add_service_account(account)
    fake.reset()
    fake.record_bodies(False)
    answer = _post_form(
        account.token_uri,
        fake.ca_file,
        {"grant_type": JWT_BEARER, "assertion": account.assertion()},
    )
    body = {
        "message": {
            "token": "fcm-ceiling-token",
            "data": {"messageId": "4f9a2c1e"},
            "android": {
                "priority": "high",
                "ttl": "3600s",
                "notification": {"title": "Payment received", "body": "You received 120.00"},
            },
        }
    }
    with tempfile.TemporaryDirectory() as workdir:
        ceiling = run_h2load(
            "FCM",
            [f"{url}/v1/projects/ceiling/messages:send"],
            {
                "authorization": f"Bearer {answer['access_token']}",
                "content-type": "application/json",
            },
            json.dumps(body).encode(),
            requests=requests,
            connections=connections,
            streams=streams,
            pid=pid,
            workdir=Path(workdir),
        )
    fake.reset()
    return ceiling


def measure_hms(
    fake: HmsControls,
    *,
    requests: int = 50_000,
    connections: int = 4,
    streams: int = 100,
    pid: int | None = None,
) -> Ceiling:
    url = fake.url
    app = HmsApp(client_id="900900900", client_secret="ceiling-secret", project_id="ceiling")
    fake.add_app(app)
    fake.reset()
    fake.record_bodies(False)
    answer = _post_form(
        f"{url}/oauth2/v3/token",
        fake.ca_file,
        {
            "grant_type": "client_credentials",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
        },
    )
    body = {
        "validate_only": False,
        "message": {
            "token": ["hms-ceiling-token"],
            "data": json.dumps({"messageId": "4f9a2c1e"}),
            "android": {
                "urgency": "HIGH",
                "ttl": "3600s",
                "notification": {
                    "title": "Payment received",
                    "body": "You received 120.00",
                    "click_action": {"type": 3},
                },
            },
        },
    }
    with tempfile.TemporaryDirectory() as workdir:
        ceiling = run_h2load(
            "HMS",
            [f"{url}/v2/ceiling/messages:send"],
            {
                "authorization": f"Bearer {answer['access_token']}",
                "content-type": "application/json",
            },
            json.dumps(body).encode(),
            requests=requests,
            connections=connections,
            streams=streams,
            pid=pid,
            workdir=Path(workdir),
        )
    fake.reset()
    return ceiling


def measure(
    providers: tuple[str, ...] = ("apns",),
    *,
    requests: int = 100_000,
    connections: int = 4,
    streams: int = 100,
) -> list[Ceiling]:
    """Start the fakes in their own process and measure each one once."""
    kinds = tuple(
        {"apns": "apns", "fcm": "google", "google": "google", "hms": "hms"}[p] for p in providers
    )
    results = []
    with FakeProcess(*dict.fromkeys(kinds), counts_only=True) as process:
        for provider in providers:
            options: dict[str, Any] = {
                "requests": requests,
                "connections": connections,
                "streams": streams,
                "pid": process.pid,
            }
            if provider == "apns":
                assert process.apns is not None
                results.append(measure_apns(process.apns, **options))
            elif provider in ("fcm", "google"):
                assert process.google is not None
                results.append(measure_fcm(process.google, **options))
            else:
                assert process.hms is not None
                results.append(measure_hms(process.hms, **options))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.ceiling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("providers", nargs="*", default=["apns"], help="apns, fcm, hms")
    parser.add_argument("-n", "--requests", type=int, default=100_000)
    parser.add_argument("-c", "--connections", type=int, default=4)
    parser.add_argument("-m", "--streams", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="report the median of this many")
    args = parser.parse_args(argv)
    by_provider: dict[str, list[Ceiling]] = {}
    for _ in range(args.runs):
        for ceiling in measure(
            tuple(args.providers),
            requests=args.requests,
            connections=args.connections,
            streams=args.streams,
        ):
            by_provider.setdefault(ceiling.provider, []).append(ceiling)
            print(ceiling, flush=True)
        time.sleep(0.5)
    for provider, runs in by_provider.items():
        rates = [c.requests_per_second for c in runs]
        print(
            f"{provider} median of {len(runs)}: {statistics.median(rates):,.0f} requests/s "
            f"(runs: {', '.join(f'{r:,.0f}' for r in rates)})"
        )
        print(f"  command: {runs[-1].command}")


if __name__ == "__main__":
    main()
