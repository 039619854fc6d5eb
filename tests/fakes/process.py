"""The fakes as a separate process, for benchmarks: ``python -m tests.fakes`` and its driver.

One process serves every fake asked for, each on its own port, and prints one JSON line::

    {"ca_file": "/tmp/.../ca.pem", "apns": "https://127.0.0.1:40001", "google": "...", ...}

A single process is enough: the APNs fake answers over 40,000 requests/s from h2load on this
machine (see ``ceiling.py``), several times what the sender under test must reach, so the
complexity of several processes sharing the port buys nothing here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import selectors
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, Self

from .apns import ApnsRemote, ApnsSite
from .core import Site
from .google import GoogleRemote, GoogleSite
from .hms import HmsRemote, HmsSite
from .runner import RemoteFake
from .server import close_site, listening_socket, new_event_loop, serve_site
from .tls import FakeCA

KINDS = ("apns", "apns-sandbox", "google", "hms")
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def make_site(kind: str) -> Site:
    if kind == "apns":
        return ApnsSite("production")
    if kind == "apns-sandbox":
        return ApnsSite("development")
    if kind == "google":
        return GoogleSite()
    if kind == "hms":
        return HmsSite()
    raise ValueError(f"unknown fake {kind!r}; choose from {KINDS}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes",
        description="Serve fake APNs / Google / Huawei push providers on loopback over TLS. "
        "Prints one JSON line with the URLs and the CA file, then serves until SIGTERM or "
        "SIGINT. Drive them with POST /_fake/<op> on each URL (see tests/fakes/README.md).",
    )
    parser.add_argument(
        "fakes", nargs="*", default=["apns", "google", "hms"], help=f"any of {', '.join(KINDS)}"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument(
        "--port",
        action="append",
        default=[],
        metavar="KIND=PORT",
        help="a fixed port for one fake (default: a free port)",
    )
    parser.add_argument("--ca-dir", help="where to write ca.pem (default: a temporary directory)")
    parser.add_argument(
        "--counts-only", action="store_true", help="keep per-token counts, not request bodies"
    )
    parser.add_argument("--max-concurrent-streams", type=int, help="SETTINGS value for every fake")
    parser.add_argument(
        "--exit-on-stdin-eof",
        action="store_true",
        help="stop when standard input closes (the parent process went away)",
    )
    args = parser.parse_args(argv)
    for kind in args.fakes:
        if kind not in KINDS:
            parser.error(f"unknown fake {kind!r}; choose from {', '.join(KINDS)}")
    return args


async def serve(args: argparse.Namespace) -> None:
    ports = {}
    for item in args.port:
        kind, _, port = item.partition("=")
        ports[kind] = int(port)
    ca = FakeCA(args.ca_dir)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    if args.exit_on_stdin_eof:

        def on_stdin() -> None:
            if not os.read(sys.stdin.fileno(), 4096):
                loop.remove_reader(sys.stdin.fileno())
                stop.set()

        loop.add_reader(sys.stdin.fileno(), on_stdin)
    running: list[tuple[Site, asyncio.Server]] = []
    info: dict[str, str] = {"ca_file": str(ca.ca_file), "pid": str(os.getpid())}
    try:
        for kind in args.fakes:
            site = make_site(kind)
            if args.counts_only:
                site.record_bodies = site.record_bodies_by_default = False
            if args.max_concurrent_streams is not None:
                site.faults.max_concurrent_streams = args.max_concurrent_streams
            server = await serve_site(site, ca, listening_socket(args.host, ports.get(kind, 0)))
            running.append((site, server))
            info[kind] = site.url
        print(json.dumps(info), flush=True)
        await stop.wait()
    finally:
        for site, server in running:
            await close_site(site, server)
        ca.cleanup()


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(serve(args))


class FakeProcess:
    """Start ``python -m tests.fakes`` and drive its fakes remotely.

    ``with FakeProcess("apns", "google", counts_only=True) as fakes:`` gives ``fakes.apns``
    (:class:`ApnsRemote`), ``fakes.google``, ``fakes.hms``, ``fakes.ca_file`` and ``fakes.pid``
    (to measure the fake's own CPU time).
    """

    def __init__(
        self,
        *kinds: str,
        counts_only: bool = False,
        host: str = "127.0.0.1",
        max_concurrent_streams: int | None = None,
        startup_timeout: float = 30,
        python: str = sys.executable,
    ) -> None:
        self.kinds = kinds or ("apns", "google", "hms")
        self.counts_only = counts_only
        self.host = host
        self.max_concurrent_streams = max_concurrent_streams
        self.startup_timeout = startup_timeout
        self.python = python
        self.process: subprocess.Popen[str] | None = None
        self.urls: dict[str, str] = {}
        self.ca_file = ""
        self.apns: ApnsRemote | None = None
        self.apns_sandbox: ApnsRemote | None = None
        self.google: GoogleRemote | None = None
        self.hms: HmsRemote | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> Self:
        command = [self.python, "-m", "tests.fakes", *self.kinds, "--exit-on-stdin-eof"]
        command += ["--host", self.host]
        if self.counts_only:
            command.append("--counts-only")
        if self.max_concurrent_streams is not None:
            command += ["--max-concurrent-streams", str(self.max_concurrent_streams)]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
        )
        self.process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(self.startup_timeout):
                self.stop()
                raise RuntimeError("the fake providers did not start in time")
        line = self.process.stdout.readline()
        if not line:
            code = self.process.wait(5)
            raise RuntimeError(f"the fake providers exited with {code} before starting")
        info: dict[str, Any] = json.loads(line)
        self.ca_file = info.pop("ca_file")
        info.pop("pid", None)
        self.urls = info
        remotes: dict[str, type[RemoteFake]] = {
            "apns": ApnsRemote,
            "apns-sandbox": ApnsRemote,
            "google": GoogleRemote,
            "hms": HmsRemote,
        }
        for kind, url in info.items():
            setattr(self, kind.replace("-", "_"), remotes[kind](url, self.ca_file))
        return self

    def stop(self) -> None:
        process = self.process
        if process is None:
            return
        self.process = None
        if process.stdin is not None:
            process.stdin.close()
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
