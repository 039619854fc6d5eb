"""Running a fake: in this process on a background event loop, or driving one in another process.

In-process fakes live on one event loop in a daemon thread (:func:`shared_loop`), not on the
test's loop: the server under test may block its own loop (synchronous database calls, a hung
sender) and the fake must still answer, and sync and async tests use the fakes alike. All of a
fake's state is touched only on that thread; the knob methods run there and wait for the
result.

Both kinds share the knob methods of :class:`Controls`, which only call ``_call(op, params)``:
in-process that runs ``Site.control`` on the fake's loop, remotely it is ``POST /_fake/<op>``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import http.client
import json
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit

from .core import ControlError, Site
from .server import close_site, listening_socket, new_event_loop, serve_site
from .tls import FakeCA

T = TypeVar("T")


class BackgroundLoop:
    """An event loop running in a daemon thread."""

    def __init__(self) -> None:
        self.loop = new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="fake-providers", daemon=True)
        self.thread.start()
        self._ready.wait()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call(self, fn: Callable[..., T], *args: Any, timeout: float = 30) -> T:
        if threading.current_thread() is self.thread:
            return fn(*args)
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def invoke() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(invoke)
        return future.result(timeout)

    def stop(self) -> None:
        if not self.loop.is_running():
            return

        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(shutdown(), timeout=10)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            if not self.loop.is_running():
                self.loop.close()


_shared: BackgroundLoop | None = None
_shared_lock = threading.Lock()


def shared_loop() -> BackgroundLoop:
    """The one background loop that in-process fakes use unless given another."""
    global _shared
    with _shared_lock:
        if _shared is None or not _shared.thread.is_alive():
            _shared = BackgroundLoop()
        return _shared


def stop_shared_loop() -> None:
    global _shared
    with _shared_lock:
        if _shared is not None:
            _shared.stop()
            _shared = None


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the fake received it, with the answer it chose."""

    seq: int
    time: float
    method: str
    path: str
    authority: str
    header_list: list[tuple[str, str]]
    body: Any
    token: str | None
    status: int | None  # None: never answered (hang or drop)
    answer: Any
    answer_headers: dict[str, str]
    action: str  # "answer", "hang" or "drop"
    delay: float
    connection: int
    stream: int
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RecordedRequest:
        header_list = [(str(k), str(v)) for k, v in data["headers"]]
        headers: dict[str, str] = {}
        for name, value in header_list:
            headers.setdefault(name, value)
        return cls(
            seq=data["seq"],
            time=data["time"],
            method=data["method"],
            path=data["path"],
            authority=data["authority"],
            header_list=header_list,
            body=data["body"],
            token=data["token"],
            status=data["status"],
            answer=data["answer"],
            answer_headers={str(k): str(v) for k, v in data["answer_headers"]},
            action=data["action"],
            delay=data["delay"],
            connection=data["connection"],
            stream=data["stream"],
            headers=headers,
        )


@dataclass(frozen=True)
class Summary:
    """What a benchmark or a no-duplicates test asserts on, computed from the counts."""

    requests: int
    delivered: int
    distinct_delivered: int
    duplicates: dict[str, int]

    def __str__(self) -> str:
        return (
            f"{self.requests} requests, {self.delivered} delivered to "
            f"{self.distinct_delivered} tokens, {len(self.duplicates)} delivered more than once"
        )


class Controls:
    """Knobs and readings shared by every fake, in-process or remote."""

    def _call(self, op: str, params: dict[str, Any] | None = None) -> Any:
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``https://127.0.0.1:<port>``, without a trailing slash."""
        raise NotImplementedError

    @property
    def ca_file(self) -> str:
        """The PEM file of the CA that signed the fake's certificate."""
        raise NotImplementedError

    def url_for(self, host: str) -> str:
        """The same server under another name the certificate covers, e.g. ``localhost``."""
        return f"https://{host}:{urlsplit(self.url).port}"

    def reset(self) -> None:
        """Forget requests, counts, programmed answers and faults; keep credentials."""
        self._call("reset")

    def requests(self, path: str | None = None, since: int = 0) -> list[RecordedRequest]:
        """Requests in the order received (``path``: a prefix filter; ``since``: a seq)."""
        params: dict[str, Any] = {"since": since}
        if path is not None:
            params["path"] = path
        return [RecordedRequest.from_json(r) for r in self._call("requests", params)]

    def counts(self) -> dict[str, int]:
        """Success answers written, per token: a delivered notification."""
        return dict(self._call("counts"))

    def attempts(self) -> dict[str, int]:
        """Every request that reached the provider logic, per token, whatever the answer."""
        return dict(self._call("attempts"))

    def stats(self) -> dict[str, int]:
        """Connections, GOAWAYs, drops, resets and refused streams seen so far."""
        return dict(self._call("stats"))

    def summary(self) -> Summary:
        counts = self.counts()
        stats = self.stats()
        return Summary(
            requests=stats["requests"],
            delivered=sum(counts.values()),
            distinct_delivered=len(counts),
            duplicates={t: n for t, n in counts.items() if n > 1},
        )

    def assert_delivered_once(self, tokens: Iterable[str]) -> None:
        """Every token delivered exactly once, and nothing else delivered."""
        expected = set(tokens)
        counts = self.counts()
        missing = sorted(expected - counts.keys())
        extra = sorted(counts.keys() - expected)
        duplicates = {t: n for t, n in counts.items() if n > 1}
        if missing or extra or duplicates:
            raise AssertionError(
                f"missing {len(missing)} {missing[:5]}, unexpected {len(extra)} {extra[:5]}, "
                f"duplicated {len(duplicates)} {dict(list(duplicates.items())[:5])}"
            )

    def set_faults(self, **knobs: Any) -> dict[str, Any]:
        """Any of: delay, hang, drop_after, drop_connections, goaway_after,
        goaway_connections, goaway_code, max_concurrent_streams, record_bodies."""
        return dict(self._call("faults", knobs))

    def fail(
        self, status: int, *, retry_after: int | None = None, times: int | None = None
    ) -> None:
        """Answer every request with the provider's own error for ``status`` (429, 500, 503),
        with ``Retry-After`` when given, for the next ``times`` requests (None: until reset)."""
        self._call("fail", {"status": status, "retry_after": retry_after, "times": times})

    def delay(self, seconds: float) -> None:
        """Hold every answer for ``seconds`` (0 turns it off)."""
        self.set_faults(delay=seconds)

    def hang(self, on: bool = True) -> None:
        """Never answer: each request waits until the client gives up."""
        self.set_faults(hang=on)

    def drop_after(self, requests: int | None, *, connections: int | None = None) -> None:
        """Answer ``requests`` requests on a connection, then close its TCP connection on the
        next one without answering; ``connections`` limits how many connections it hits."""
        self.set_faults(drop_after=requests, drop_connections=connections)

    def goaway_after(
        self, requests: int | None, *, connections: int | None = None, error_code: int = 0
    ) -> None:
        """After the ``requests``-th request on a connection, send GOAWAY naming that stream as
        the last one processed, answer the streams at or below it, ignore those above, close."""
        self.set_faults(
            goaway_after=requests, goaway_connections=connections, goaway_code=error_code
        )

    def max_concurrent_streams(self, limit: int) -> None:
        """SETTINGS_MAX_CONCURRENT_STREAMS, announced to open connections too."""
        self.set_faults(max_concurrent_streams=limit)

    def record_bodies(self, on: bool) -> None:
        """False keeps counts only: for benchmarks with millions of requests."""
        self.set_faults(record_bodies=on)

    def clear_programs(self, token: str | None = None) -> None:
        self._call("clear_programs", {"token": token})

    def _program(self, token: str | None, **entry: Any) -> dict[str, Any]:
        return dict(self._call("program", {"token": token, **entry}))


class InProcessFake(Controls):
    """A fake served from this process's background loop; use as a context manager."""

    site_class: type[Site] = Site

    def __init__(
        self,
        ca: FakeCA | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        loop: BackgroundLoop | None = None,
        **site_options: Any,
    ) -> None:
        self.site = self.site_class(**site_options)
        self.ca = ca if ca is not None else FakeCA()
        self._owns_ca = ca is None
        self.host = host
        self.port = port
        self.loop = loop
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return self.site.url

    @property
    def ca_file(self) -> str:
        return str(self.ca.ca_file)

    def start(self) -> Self:
        if self.loop is None:
            self.loop = shared_loop()
        sock = listening_socket(self.host, self.port)
        self._server = self.loop.run(serve_site(self.site, self.ca, sock))
        return self

    def stop(self) -> None:
        if self.loop is not None and self._server is not None:
            self.loop.run(close_site(self.site, self._server))
            self._server = None
        if self._owns_ca:
            self.ca.cleanup()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _call(self, op: str, params: dict[str, Any] | None = None) -> Any:
        assert self.loop is not None, "start the fake first"
        return self.loop.call(self.site.control, op, params or {})


class RemoteFake(Controls):
    """A fake in another process (``python -m tests.fakes``), driven through ``/_fake/<op>``."""

    def __init__(self, url: str, ca_file: str, timeout: float = 60) -> None:
        self._url = url.rstrip("/")
        self._ca_file = ca_file
        self.timeout = timeout
        self._context = ssl.create_default_context(cafile=ca_file)
        self._context.set_alpn_protocols(["http/1.1"])

    @property
    def url(self) -> str:
        return self._url

    @property
    def ca_file(self) -> str:
        return self._ca_file

    def _call(self, op: str, params: dict[str, Any] | None = None) -> Any:
        parts = urlsplit(self.url)
        conn = http.client.HTTPSConnection(
            parts.hostname or "127.0.0.1", parts.port, context=self._context, timeout=self.timeout
        )
        try:
            body = json.dumps(params or {}).encode()
            conn.request(
                "POST", f"/_fake/{op}", body=body, headers={"content-type": "application/json"}
            )
            response = conn.getresponse()
            payload = json.loads(response.read() or b"{}")
        finally:
            conn.close()
        if response.status != 200:
            raise ControlError(payload.get("error", f"HTTP {response.status}"))
        return payload.get("result")
