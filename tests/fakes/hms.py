"""Fake Huawei Push Kit: the OAuth token endpoint (``POST /oauth2/v3/token``, client
credentials) and ``POST /v2/<project>/messages:send`` on one TLS server, HTTP/2 or HTTP/1.1.

Point ``PUSH_SERVER_HMS_TOKEN_URL`` at ``<url>/oauth2/v3/token`` and ``PUSH_SERVER_HMS_URL`` at
``<url>``. Answers carry Huawei's result code as a string in ``code``; the HTTP status follows
Huawei's table (200 for success and partial success, 400 for invalid tokens and bad messages,
401 for OAuth problems, 500 for internal errors, 503 for flow control).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import json
import os
import re
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .core import JSON_TYPE, ControlError, Request, Response, Site, bearer, json_response
from .runner import Controls, InProcessFake, RemoteFake

TOKEN_PATH = b"/oauth2/v3/token"
_SEND_PATH = re.compile(rb"/v[12]/([^/]+)/messages:send")

# code -> (HTTP status, msg)
HMS_CODES: dict[str, tuple[int, str]] = {
    "80000000": (200, "Success"),
    "80100000": (200, "Some tokens are right, the others are illegal"),
    "80100001": (400, "Some request parameters are incorrect"),
    "80100003": (400, "Incorrect message structure"),
    "80100004": (400, "The message expiration time is earlier than the current time"),
    "80200001": (401, "OAuth authentication error"),
    "80200003": (401, "OAuth token expired"),
    "80300002": (403, "The current app does not have the permission to send messages"),
    "80300007": (400, "All the tokens are invalid"),
    "80300008": (413, "The message body size exceeds the default value"),
    "80300010": (400, "The number of tokens in the message body exceeds the default value"),
    "81000001": (500, "System internal error"),
}
# Not a Huawei code: the HTTP 503 of flow control, programmable like the codes.
FLOW_CONTROL = "503"
MAX_TOKENS = 1000
MAX_BODY = 4096
NOTIFICATION_FIELDS = frozenset(
    {
        "title",
        "body",
        "title_loc_key",
        "title_loc_args",
        "body_loc_key",
        "body_loc_args",
        "icon",
        "sound",
        "tag",
        "click_action",
        "badge",
        "image",
        "channel_id",
        "color",
        "importance",
        "default_sound",
        "notify_id",
        "when",
        "style",
        "big_title",
        "big_body",
        "group",
        "visibility",
        "auto_clear",
        "foreground_show",
    }
)
ANDROID_FIELDS = frozenset(
    {
        "collapse_key",
        "ttl",
        "urgency",
        "category",
        "bi_tag",
        "fast_app_target",
        "data",
        "notification",
        "receipt_id",
        "target_user_type",
    }
)
MESSAGE_FIELDS = frozenset({"data", "notification", "android", "apns", "webpush", "token"})
_TTL = re.compile(r"\d+(\.\d{1,9})?s")


class _Invalid(Exception):
    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def validate_message(document: Any) -> tuple[list[str], bool]:
    """The tokens and validate_only flag of a send request, or :class:`_Invalid`."""
    if not isinstance(document, dict):
        raise _Invalid("80100003", "Illegal payload, the request body is not a JSON object")
    validate_only = document.get("validate_only", False)
    if not isinstance(validate_only, bool):
        raise _Invalid("80100001", "Illegal payload, validate_only must be a boolean")
    message = document.get("message")
    if not isinstance(message, dict):
        raise _Invalid("80100003", "Illegal payload, message is missing")
    for name in message:
        if name not in MESSAGE_FIELDS:
            raise _Invalid("80100003", f"Illegal payload, unknown field message.{name}")
    tokens = message.get("token")
    if (
        not isinstance(tokens, list)
        or not 1 <= len(tokens) <= MAX_TOKENS
        or not all(isinstance(t, str) and t for t in tokens)
    ):
        raise _Invalid("80300010", HMS_CODES["80300010"][1])
    if "data" in message and not isinstance(message["data"], str):
        raise _Invalid("80100003", "Illegal payload, data must be a string")
    android = message.get("android")
    if android is not None:
        _validate_android(android)
    if (
        "notification" not in message
        and "data" not in message
        and not (isinstance(android, dict) and ("notification" in android or "data" in android))
    ):
        raise _Invalid("80100003", "Illegal payload, the message has neither data nor notification")
    return tokens, validate_only


def _validate_android(android: Any) -> None:
    if not isinstance(android, dict):
        raise _Invalid("80100003", "Illegal payload, android must be an object")
    for name in android:
        if name not in ANDROID_FIELDS:
            raise _Invalid("80100003", f"Illegal payload, unknown field android.{name}")
    collapse_key = android.get("collapse_key")
    if collapse_key is not None and (
        isinstance(collapse_key, bool)
        or not isinstance(collapse_key, int)
        or not -1 <= collapse_key <= 100
    ):
        raise _Invalid("80100001", "Illegal payload, collapse_key must be an integer in -1..100")
    ttl = android.get("ttl")
    if ttl is not None and (not isinstance(ttl, str) or _TTL.fullmatch(ttl) is None):
        raise _Invalid("80100001", 'Illegal payload, ttl must look like "86400s"')
    urgency = android.get("urgency")
    if urgency is not None and urgency not in ("HIGH", "NORMAL"):
        raise _Invalid("80100001", "Illegal payload, urgency must be HIGH or NORMAL")
    if "data" in android and not isinstance(android["data"], str):
        raise _Invalid("80100003", "Illegal payload, android.data must be a string")
    notification = android.get("notification")
    if notification is None:
        return
    if not isinstance(notification, dict):
        raise _Invalid("80100003", "Illegal payload, android.notification must be an object")
    for name, value in notification.items():
        if name not in NOTIFICATION_FIELDS:
            raise _Invalid("80100003", f"Illegal payload, unknown field notification.{name}")
        if name.endswith("_loc_args") and (
            not isinstance(value, list) or not all(isinstance(v, str) for v in value)
        ):
            raise _Invalid("80100001", f"Illegal payload, {name} must be a list of strings")
    click_action = notification.get("click_action")
    if not isinstance(click_action, dict) or click_action.get("type") not in (1, 2, 3, 4):
        raise _Invalid("80100003", "Illegal payload, click_action is mandatory (type 1 to 4)")
    badge = notification.get("badge")
    if badge is not None and (
        not isinstance(badge, dict)
        or not set(badge) <= {"set_num", "add_num", "class"}
        or any(isinstance(badge.get(k), bool) for k in ("set_num", "add_num"))
        or not all(isinstance(badge[k], int) for k in ("set_num", "add_num") if k in badge)
    ):
        raise _Invalid("80100001", 'Illegal payload, badge must be {"set_num": <int>}')


@dataclass
class _App:
    client_id: str
    client_secret: str
    project_id: str


class HmsSite(Site):
    name = "hms"

    def __init__(self, token_lifetime: int = 3600) -> None:
        super().__init__()
        self.token_lifetime = token_lifetime
        self._default_lifetime = token_lifetime
        self.apps: dict[str, _App] = {}
        self.secret = os.urandom(32)
        self.revoked_before = 0.0
        self.tokens_issued = 0
        self.access_cache: dict[bytes, tuple[float, float, str]] = {}
        self._request_ids = itertools.count(1)
        self.ops.update(
            add_app=self.op_add_app,
            expire_access_tokens=self.op_expire_access_tokens,
            configure=self.op_configure,
        )

    def request_id(self) -> str:
        return f"{int(time.time() * 1000)}{next(self._request_ids):010d}"

    def answer(self, code: str, msg: str | None = None, status: int | None = None) -> Response:
        if code == FLOW_CONTROL:
            document = {"code": FLOW_CONTROL, "msg": "Flow control, retry later"}
            return json_response(status or 503, document)
        http_status, default = HMS_CODES[code]
        document = {"code": code, "msg": msg or default, "requestId": self.request_id()}
        return json_response(status or http_status, document)

    # Serving.

    def serve(self, request: Request) -> Response:
        path = request.path.partition(b"?")[0]
        if path == TOKEN_PATH:
            form = {k: v[0] for k, v in parse_qs(request.body.decode("latin-1")).items()}
            return self.finish(request, None, form, self.token_answer(request, form))
        match = _SEND_PATH.fullmatch(path)
        if match is None or request.method != b"POST":
            response = json_response(404, {"code": "404", "msg": "Not Found"})
            return self.finish(request, None, None, response)
        return self.serve_send(request, match.group(1).decode("latin-1"))

    def serve_send(self, request: Request, project_id: str) -> Response:
        try:
            document: Any = json.loads(request.body)
        except ValueError:
            document = None
        recorded = document if self.record_bodies else None
        access = bearer(request.header(b"authorization"))
        if access is None:
            return self.finish(request, None, recorded, self.answer("80200001"))
        grant = self.check_access_token(access)
        if grant is None:
            return self.finish(request, None, recorded, self.answer("80200001"))
        expired, app = grant
        if expired:
            return self.finish(request, None, recorded, self.answer("80200003"))
        if project_id not in (app.project_id, app.client_id):
            return self.finish(request, None, recorded, self.answer("80300002"))
        if len(request.body) > MAX_BODY:
            return self.finish(request, None, recorded, self.answer("80300008"))
        if document is None:
            response = self.answer("80100003", "Illegal payload, the body is not JSON")
            return self.finish(request, None, recorded, response)
        try:
            tokens, validate_only = validate_message(document)
        except _Invalid as invalid:
            return self.finish(request, None, recorded, self.answer(invalid.code, invalid.msg))
        token = tokens[0].encode()
        entry = None
        if self.programs:
            for candidate in tokens:
                entry = self.take_program(candidate.encode())
                if entry is not None:
                    token = candidate.encode()
                    break
        if entry is not None and "code" in entry:
            response = self.programmed(entry, token)
            return self.finish(request, token, recorded, response, entry)
        response = self.answer("80000000")
        if not validate_only:
            if len(tokens) == 1:
                response.deliver = token
            else:
                # Several tokens in one request: count them now, as the answer covers all.
                for extra in tokens:
                    self.count_delivered(extra.encode())
        return self.finish(request, token, recorded, response, entry)

    def programmed(self, entry: dict[str, Any], token: bytes) -> Response:
        code = entry["code"]
        msg = entry.get("msg")
        if code == "80100000" and msg is None:
            msg = json.dumps(
                {"success": 0, "failure": 1, "illegal_tokens": [token.decode("latin-1")]}
            )
        response = self.answer(code, msg, entry.get("status"))
        if "retry_after" in entry:
            response.headers.append((b"retry-after", entry["retry_after"].encode()))
        return response

    def check_access_token(self, token: bytes) -> tuple[bool, _App] | None:
        """(expired, app), or None when the token was never issued here."""
        cached = self.access_cache.get(token)
        if cached is None:
            cached = self._decode_access_token(token)
            if cached is None:
                return None
            if len(self.access_cache) >= 10000:
                self.access_cache.clear()
            self.access_cache[token] = cached
        expires, issued, client_id = cached
        app = self.apps.get(client_id)
        if app is None:
            return None
        return (time.time() >= expires or issued <= self.revoked_before, app)

    def _decode_access_token(self, token: bytes) -> tuple[float, float, str] | None:
        parts = token.split(b".")
        if len(parts) != 3 or parts[0] != b"hms":
            return None
        expected = hmac.new(self.secret, parts[1], hashlib.sha256).digest()[:18]
        try:
            if not hmac.compare_digest(_b64url_decode(parts[2].decode()), expected):
                return None
            claims = json.loads(_b64url_decode(parts[1].decode()))
        except (ValueError, binascii.Error):
            return None
        return (float(claims["e"]), float(claims["i"]), str(claims["c"]))

    def token_answer(self, request: Request, form: dict[str, str]) -> Response:
        if request.method != b"POST":
            return json_response(405, {"error": 1101, "error_description": "method not allowed"})
        if form.get("grant_type") != "client_credentials":
            return json_response(
                400,
                {"error": 1102, "sub_error": 20001, "error_description": "invalid grant_type"},
            )
        app = self.apps.get(form.get("client_id", ""))
        if app is None or not hmac.compare_digest(
            app.client_secret.encode(), form.get("client_secret", "").encode()
        ):
            # What Huawei answers for a wrong app id or secret.
            return json_response(
                400, {"error": 1101, "sub_error": 20003, "error_description": "parameter invalid"}
            )
        now = time.time()
        claims = {"e": now + self.token_lifetime, "i": now, "c": app.client_id}
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        mac = _b64url(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()[:18])
        self.tokens_issued += 1
        answer = {
            "access_token": f"hms.{payload}.{mac}",
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
        }
        return Response(200, [JSON_TYPE], json.dumps(answer).encode())

    # Control.

    def check_program(self, entry: dict[str, Any]) -> None:
        code = entry.get("code")
        if code is None:
            if not (entry.get("delay") or entry.get("hang") or entry.get("drop")):
                raise ControlError("program needs a code, a delay, hang or drop")
            return
        entry["code"] = code = str(code)
        if code != FLOW_CONTROL and code not in HMS_CODES:
            raise ControlError(
                f"unknown HMS code {code!r}; known: {sorted(HMS_CODES)} and {FLOW_CONTROL!r}"
            )

    def fail_entry(self, status: int) -> dict[str, Any]:
        if status == 503:
            return {"code": FLOW_CONTROL}
        if status == 500:
            return {"code": "81000001"}
        if status == 429:
            return {"code": FLOW_CONTROL, "status": 429}
        raise ControlError(f"HMS fail() takes 429, 500 or 503, not {status}")

    def reset_extra(self) -> None:
        self.token_lifetime = self._default_lifetime
        self.revoked_before = 0.0
        self.tokens_issued = 0

    def op_add_app(self, params: dict[str, Any]) -> None:
        client_id = str(params["client_id"])
        self.apps[client_id] = _App(
            client_id=client_id,
            client_secret=str(params["client_secret"]),
            project_id=str(params.get("project_id") or client_id),
        )

    def op_expire_access_tokens(self, params: dict[str, Any]) -> None:
        self.revoked_before = time.time()

    def op_configure(self, params: dict[str, Any]) -> dict[str, Any]:
        if "token_lifetime" in params:
            self.token_lifetime = int(params["token_lifetime"])
        return {"token_lifetime": self.token_lifetime}

    def op_stats(self, params: dict[str, Any]) -> dict[str, int]:
        stats = super().op_stats(params)
        stats["tokens_issued"] = self.tokens_issued
        return stats


@dataclass
class HmsApp:
    """An AppGallery Connect app's OAuth client, as the server under test stores it."""

    client_id: str = "100200300"
    client_secret: str = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f9"
    project_id: str = "388421841221234567"


class HmsControls(Controls):
    def add_app(self, app: HmsApp) -> None:
        self._call(
            "add_app",
            {
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "project_id": app.project_id,
            },
        )

    def program(
        self,
        token: str | None,
        code: str | None = None,
        *,
        msg: str | None = None,
        status: int | None = None,
        retry_after: int | str | None = None,
        times: int | None = None,
        delay: float | None = None,
        hang: bool = False,
        drop: bool = False,
    ) -> dict[str, Any]:
        """Answer sends to ``token`` (None: every token) with Huawei's ``code`` ("80100000",
        "80300007", "80200003", "81000001", ... or "503" for HTTP 503 flow control)."""
        return self._program(
            token,
            code=code,
            msg=msg,
            status=status,
            retry_after=retry_after,
            times=times,
            delay=delay,
            hang=hang or None,
            drop=drop or None,
        )

    def expire_access_tokens(self) -> None:
        """Answer 80200003 (token expired) to every access token issued so far."""
        self._call("expire_access_tokens")

    def token_lifetime(self, seconds: int) -> None:
        self._call("configure", {"token_lifetime": seconds})


class HmsFake(HmsControls, InProcessFake):
    """In-process fake Huawei Push Kit."""

    site_class = HmsSite
    site: HmsSite

    @property
    def token_url(self) -> str:
        """For ``PUSH_SERVER_HMS_TOKEN_URL``."""
        return f"{self.url}/oauth2/v3/token"


class HmsRemote(HmsControls, RemoteFake):
    """Fake Huawei Push Kit in another process."""

    @property
    def token_url(self) -> str:
        return f"{self.url}/oauth2/v3/token"
