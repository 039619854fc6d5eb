"""A PowerAuth Server on loopback: ``POST /rest/v3/activation/status``, answered as programmed.

It runs the standard library's threaded HTTP/1.1 server, one thread per connection, so a slow
answer to one request does not hold up the others. Like PowerAuth Server, it answers an
activation it does not know as REMOVED without a user.
"""

from __future__ import annotations

import base64
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

STATUS_PATH = "/rest/v3/activation/status"


@dataclass(frozen=True, slots=True)
class Answer:
    http_status: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Call:
    path: str
    headers: dict[str, str]
    body: Any


def status_answer(activation_id: str, status: str, user_id: str | None) -> Answer:
    document = {
        "status": "OK",
        "responseObject": {
            "activationId": activation_id,
            "activationStatus": status,
            "userId": user_id,
            "applicationId": 1,
            "activationName": "phone",
            "blockedReason": "NOT_SPECIFIED" if status == "BLOCKED" else None,
        },
    }
    return Answer(200, json.dumps(document).encode())


def error_answer(http_status: int, code: str, message: str) -> Answer:
    document = {"status": "ERROR", "responseObject": {"code": code, "message": message}}
    return Answer(http_status, json.dumps(document).encode())


class PowerAuthFake:
    def __init__(self, username: str, password: str) -> None:
        self.credentials = f"Basic {base64.b64encode(f'{username}:{password}'.encode()).decode()}"
        self._lock = threading.Lock()
        self._answers: dict[str, Answer] = {}
        self._every: Answer | None = None
        self._delay_s = 0.0
        self._wake = threading.Event()
        self._calls: list[Call] = []

        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                fake._answer(self, self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read ``calls`` instead."""

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                """Quiet: a client that gave up on a slow answer closes its end mid-reply."""

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    # Programming

    def activation(self, activation_id: str, status: str, user_id: str | None) -> None:
        self.answer(activation_id, status_answer(activation_id, status, user_id))

    def answer(self, activation_id: str | None, answer: Answer) -> None:
        """Answer requests for the activation (None: every request) this way."""
        with self._lock:
            if activation_id is None:
                self._every = answer
            else:
                self._answers[activation_id] = answer

    def slow(self, delay_s: float) -> None:
        with self._lock:
            self._delay_s = delay_s

    def reset(self) -> None:
        with self._lock:
            self._answers.clear()
            self._every = None
            self._delay_s = 0.0
            self._calls.clear()
            # Requests still held by slow() end now.
            self._wake.set()
            self._wake = threading.Event()

    # Reading

    def calls(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def asked(self) -> list[str]:
        """The activation ids asked about, in order."""
        return [call.body["requestObject"]["activationId"] for call in self.calls()]

    def close(self) -> None:
        self.reset()
        self._server.shutdown()
        self._server.server_close()

    # Serving

    def _answer(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        headers = {name.lower(): value for name, value in handler.headers.items()}
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self._calls.append(Call(handler.path, headers, body))
            delay_s, wake = self._delay_s, self._wake
            answer = self._choose(handler.path, headers, body)
        if delay_s:
            wake.wait(delay_s)
        handler.send_response(answer.http_status)
        handler.send_header("content-type", "application/json")
        handler.send_header("content-length", str(len(answer.body)))
        handler.end_headers()
        handler.wfile.write(answer.body)

    def _choose(self, path: str, headers: dict[str, str], body: Any) -> Answer:
        if path != STATUS_PATH:
            return error_answer(404, "ERROR_NOT_FOUND", f"no endpoint {path}")
        if headers.get("authorization") != self.credentials:
            return error_answer(401, "ERROR_UNAUTHORIZED", "bad credentials")
        try:
            activation_id = body["requestObject"]["activationId"]
        except (KeyError, TypeError):
            return error_answer(400, "ERROR_REQUEST", "requestObject.activationId is required")
        if self._every is not None:
            return self._every
        return self._answers.get(activation_id) or status_answer(activation_id, "REMOVED", None)
