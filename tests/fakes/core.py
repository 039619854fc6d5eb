"""What every fake shares: requests and answers, fault knobs, programmed answers, recording and
the control operations behind ``/_fake/<op>``.

A fake is a :class:`Site`: the HTTP layers (``http2.py``, ``http1.py``) parse a request into a
:class:`Request`, call :meth:`Site.handle` and write the :class:`Response` it returns. All of a
site's state lives on the event loop that serves it; other threads reach it only through
:meth:`Site.control` run on that loop (see ``runner.py``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

ANSWER = 0
HANG = 1
DROP = 2

JSON_TYPE = (b"content-type", b"application/json; charset=UTF-8")


class Request:
    __slots__ = ("authority", "body", "connection", "headers", "method", "path", "stream_id")

    def __init__(
        self,
        method: bytes,
        path: bytes,
        authority: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        connection: Any,
        stream_id: int,
    ) -> None:
        self.method = method
        self.path = path
        self.authority = authority
        self.headers = headers
        self.body = body
        self.connection = connection
        self.stream_id = stream_id

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Response:
    """An answer; ``action`` HANG never answers, DROP closes the connection without answering.

    ``deliver`` names the token counted as delivered once the answer has actually been written.
    """

    __slots__ = ("action", "body", "delay", "deliver", "headers", "status")

    def __init__(
        self,
        status: int,
        headers: list[tuple[bytes, bytes]] | None = None,
        body: bytes = b"",
        delay: float = 0.0,
        action: int = ANSWER,
        deliver: bytes | None = None,
    ) -> None:
        self.status = status
        self.headers = headers if headers is not None else []
        self.body = body
        self.delay = delay
        self.action = action
        self.deliver = deliver


def json_response(
    status: int, document: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> Response:
    return Response(status, [JSON_TYPE, *(headers or [])], json.dumps(document).encode())


class ControlError(ValueError):
    """A control operation was called with wrong parameters: answered with 400."""


class Faults:
    """Connection and timing faults; per-token answers live in ``Site.programs``."""

    def __init__(self) -> None:
        self.delay = 0.0
        self.hang = False
        self.drop_after: int | None = None
        self.drop_connections: int | None = None
        self.goaway_after: int | None = None
        self.goaway_connections: int | None = None
        self.goaway_code = 0
        self.max_concurrent_streams = 1000

    def take_drop(self, requests_on_connection: int) -> bool:
        if self.drop_after is None or requests_on_connection <= self.drop_after:
            return False
        if self.drop_connections is not None:
            if self.drop_connections <= 0:
                return False
            self.drop_connections -= 1
        return True

    def take_goaway(self, requests_on_connection: int) -> bool:
        if self.goaway_after is None or requests_on_connection < self.goaway_after:
            return False
        if self.goaway_connections is not None:
            if self.goaway_connections <= 0:
                return False
            self.goaway_connections -= 1
        return True

    def as_json(self) -> dict[str, Any]:
        return {
            "delay": self.delay,
            "hang": self.hang,
            "drop_after": self.drop_after,
            "drop_connections": self.drop_connections,
            "goaway_after": self.goaway_after,
            "goaway_connections": self.goaway_connections,
            "goaway_code": self.goaway_code,
            "max_concurrent_streams": self.max_concurrent_streams,
        }


class Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.open_connections = 0
        self.http2_connections = 0
        self.http1_connections = 0
        self.requests = 0
        self.goaways = 0
        self.drops = 0
        self.resets = 0
        self.refused = 0
        self.ignored_after_goaway = 0

    def as_json(self) -> dict[str, int]:
        return dict(vars(self))


class Site:
    """Base of the fakes. Subclasses implement :meth:`serve` and add control operations."""

    name = "fake"
    alpn: tuple[str, ...] = ("h2", "http/1.1")
    http1_paths: tuple[bytes, ...] = (b"/",)

    def __init__(self) -> None:
        self.url = ""
        self.hosts: list[str] = []
        self.faults = Faults()
        self.stats = Stats()
        self.record_bodies = True
        # What a reset goes back to: False in a counts-only fake process (benchmarks).
        self.record_bodies_by_default = True
        self.records: list[dict[str, Any]] = []
        self.delivered: dict[bytes, int] = {}
        self.attempts: dict[bytes, int] = {}
        # Per-token queues of programmed answers; key None applies to every request.
        self.programs: dict[bytes | None, list[dict[str, Any]]] = {}
        self.connections: set[Any] = set()
        self._seq = 0
        # Set in worker processes: control operations go through the master to all workers.
        self.forward: Callable[[str, dict[str, Any]], Awaitable[Any]] | None = None
        self.ops: dict[str, Callable[[dict[str, Any]], Any]] = {
            "reset": self.op_reset,
            "requests": self.op_requests,
            "counts": self.op_counts,
            "attempts": self.op_attempts,
            "stats": self.op_stats,
            "faults": self.op_faults,
            "program": self.op_program,
            "clear_programs": self.op_clear_programs,
            "fail": self.op_fail,
            "ping": lambda _params: "pong",
        }

    # Serving.

    def handle(self, request: Request) -> Response | Awaitable[Response]:
        if request.path.startswith(b"/_fake/"):
            return self.handle_control(request)
        stats = self.stats
        stats.requests += 1
        connection = request.connection
        if not connection.counted:
            # Counted at its first provider request, so control calls do not show as a
            # sender's connections.
            connection.counted = True
            stats.connections += 1
            if request.stream_id:
                stats.http2_connections += 1
            else:
                stats.http1_connections += 1
        return self.serve(request)

    def serve(self, request: Request) -> Response:
        raise NotImplementedError

    def take_program(self, token: bytes | None) -> dict[str, Any] | None:
        """The next programmed answer for ``token`` (or for every request), consuming one use."""
        programs = self.programs
        key: bytes | None = token
        queue = programs.get(key) if key is not None else None
        if not queue:
            key = None
            queue = programs.get(None)
            if not queue:
                return None
        entry = queue[0]
        times = entry.get("times")
        if times is not None:
            times -= 1
            if times <= 0:
                queue.pop(0)
                if not queue:
                    del programs[key]
            else:
                entry["times"] = times
        return entry

    def finish(
        self,
        request: Request,
        token: bytes | None,
        body: Any,
        response: Response,
        entry: dict[str, Any] | None = None,
    ) -> Response:
        """Apply timing faults, record the request and count the attempt."""
        faults = self.faults
        if token is not None:
            attempts = self.attempts
            attempts[token] = attempts.get(token, 0) + 1
        if entry is not None:
            if entry.get("drop"):
                response = Response(0, action=DROP)
            elif entry.get("hang"):
                response = Response(0, action=HANG)
            elif entry.get("delay"):
                response.delay = float(entry["delay"])
        if faults.hang and response.action == ANSWER:
            response = Response(0, action=HANG)
        if faults.delay and not response.delay:
            response.delay = faults.delay
        if self.record_bodies:
            self.record(request, token, body, response)
        return response

    def record(self, request: Request, token: bytes | None, body: Any, response: Response) -> None:
        self._seq += 1
        answer: Any = None
        if response.body:
            try:
                answer = json.loads(response.body)
            except ValueError:
                answer = response.body.decode("utf-8", "replace")
        status = response.status if response.action == ANSWER else None
        self.records.append(
            {
                "seq": self._seq,
                "time": time.time(),
                "method": request.method.decode("latin-1"),
                "path": request.path.decode("latin-1"),
                "authority": request.authority.decode("latin-1"),
                "headers": [
                    [name.decode("latin-1"), value.decode("latin-1")]
                    for name, value in request.headers
                ],
                "body": body,
                "token": token.decode("latin-1") if token is not None else None,
                "status": status,
                "answer": answer,
                "answer_headers": [
                    [name.decode("latin-1"), value.decode("latin-1")]
                    for name, value in response.headers
                ],
                "action": ("answer", "hang", "drop")[response.action],
                "delay": response.delay,
                "connection": getattr(request.connection, "serial", 0),
                "stream": request.stream_id,
            }
        )

    def count_delivered(self, token: bytes) -> None:
        delivered = self.delivered
        delivered[token] = delivered.get(token, 0) + 1

    # Control.

    def control(self, op: str, params: dict[str, Any]) -> Any:
        handler = self.ops.get(op)
        if handler is None:
            raise ControlError(f"unknown control operation {op!r}; known: {sorted(self.ops)}")
        return handler(params)

    def handle_control(self, request: Request) -> Response | Awaitable[Response]:
        path, _, query = request.path.partition(b"?")
        op = path[len(b"/_fake/") :].decode("latin-1").strip("/")
        try:
            if request.body:
                params = json.loads(request.body)
                if not isinstance(params, dict):
                    raise ControlError("control parameters must be a JSON object")
            else:
                params = dict(parse_qsl(query.decode("latin-1")))
        except ValueError as exc:
            return json_response(400, {"error": str(exc)})
        if self.forward is not None and op != "ping":
            return self._forwarded(op, params)
        try:
            result = self.control(op, params)
        except (ControlError, ValueError, TypeError, KeyError) as exc:
            return json_response(400, {"error": f"{type(exc).__name__}: {exc}"})
        return json_response(200, {"result": result})

    async def _forwarded(self, op: str, params: dict[str, Any]) -> Response:
        assert self.forward is not None
        try:
            result = await self.forward(op, params)
        except (ControlError, ValueError, TypeError, KeyError) as exc:
            return json_response(400, {"error": f"{type(exc).__name__}: {exc}"})
        return json_response(200, {"result": result})

    def op_reset(self, params: dict[str, Any]) -> None:
        """Forget requests, counts, programs and faults; keep registered credentials."""
        self.records.clear()
        self.delivered.clear()
        self.attempts.clear()
        self.programs.clear()
        self.faults = Faults()
        self.record_bodies = self.record_bodies_by_default
        self._seq = 0
        self.stats = Stats()
        for connection in list(self.connections):
            connection.counted = False
            connection.apply_settings()
        self.reset_extra()

    def reset_extra(self) -> None:
        """Provider state that ``reset`` also restores."""

    def op_requests(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        records = self.records
        since = int(params.get("since", 0) or 0)
        if since:
            records = [r for r in records if r["seq"] > since]
        path = params.get("path")
        if path:
            records = [r for r in records if r["path"].startswith(path)]
        return list(records)

    def op_counts(self, params: dict[str, Any]) -> dict[str, int]:
        return {token.decode("latin-1"): n for token, n in self.delivered.items()}

    def op_attempts(self, params: dict[str, Any]) -> dict[str, int]:
        return {token.decode("latin-1"): n for token, n in self.attempts.items()}

    def op_stats(self, params: dict[str, Any]) -> dict[str, int]:
        self.stats.open_connections = sum(1 for c in self.connections if c.counted)
        return self.stats.as_json()

    def op_faults(self, params: dict[str, Any]) -> dict[str, Any]:
        """Set any of the fault knobs given; answer the whole set."""
        faults = self.faults
        if "delay" in params:
            faults.delay = float(params["delay"] or 0.0)
        if "hang" in params:
            faults.hang = _as_bool(params["hang"])
        for name in (
            "drop_after",
            "drop_connections",
            "goaway_after",
            "goaway_connections",
        ):
            if name in params:
                value = params[name]
                setattr(faults, name, None if value in (None, "") else int(value))
        if "goaway_code" in params:
            faults.goaway_code = int(params["goaway_code"])
        if "record_bodies" in params:
            self.record_bodies = _as_bool(params["record_bodies"])
        if "max_concurrent_streams" in params:
            limit = int(params["max_concurrent_streams"])
            if not 0 <= limit < 2**31:
                raise ControlError("max_concurrent_streams out of range")
            faults.max_concurrent_streams = limit
            for connection in list(self.connections):
                connection.apply_settings()
        result = faults.as_json()
        result["record_bodies"] = self.record_bodies
        return result

    def op_program(self, params: dict[str, Any]) -> dict[str, Any]:
        token = params.get("token")
        entry = {k: v for k, v in params.items() if k != "token" and v is not None}
        times = entry.get("times")
        if times is not None:
            entry["times"] = int(times)
            if entry["times"] <= 0:
                raise ControlError("times must be positive")
        if "retry_after" in entry:
            entry["retry_after"] = str(entry["retry_after"])
        if "delay" in entry:
            entry["delay"] = float(entry["delay"])
        self.check_program(entry)
        key = token.encode("latin-1") if isinstance(token, str) else None
        self.programs.setdefault(key, []).append(entry)
        return entry

    def check_program(self, entry: dict[str, Any]) -> None:
        """Refuse an answer the provider would never give; fill in its status."""

    def op_clear_programs(self, params: dict[str, Any]) -> None:
        token = params.get("token")
        if token is None:
            self.programs.clear()
        else:
            self.programs.pop(token.encode("latin-1"), None)

    def op_fail(self, params: dict[str, Any]) -> dict[str, Any]:
        """Answer every request with a provider error for ``status`` (5xx or 429)."""
        status = int(params["status"])
        entry = self.fail_entry(status)
        program = {"token": None, **entry}
        for key in ("retry_after", "times"):
            if params.get(key) is not None:
                program[key] = params[key]
        return self.op_program(program)

    def fail_entry(self, status: int) -> dict[str, Any]:
        raise ControlError(f"{self.name} has no generic answer for status {status}")


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes", "on")
    return bool(value)


def bearer(value: bytes | None) -> bytes | None:
    if value is None or len(value) < 7 or value[:7].lower() != b"bearer ":
        return None
    return value[7:].strip()
