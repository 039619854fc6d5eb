"""Fake Google: the OAuth token endpoint (``POST /token``) and FCM HTTP v1
(``POST /v1/projects/<project>/messages:send``) on one TLS server, HTTP/2 or HTTP/1.1.

The service account's ``token_uri`` points at ``<url>/token``. The RS256 assertion is checked as
Google does (kid = private_key_id, iss = client_email, scope, aud, a short-lived iat/exp), and the
access token it answers is accepted by ``messages:send`` until it expires. Access tokens carry
their own expiry under an HMAC, so several worker processes accept each other's tokens.

Error bodies follow Google's shapes: JSON-to-proto mistakes (unknown field, wrong type, bad enum
or duration) answer 400 INVALID_ARGUMENT with a ``google.rpc.BadRequest`` detail only; FCM's own
refusals carry the ``FcmError`` detail with its ``errorCode``; a bad or expired access token is a
401 UNAUTHENTICATED with no FcmError, which tells the sender to refresh its token once.
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
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import jwt as pyjwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .core import JSON_TYPE, ControlError, Request, Response, Site, bearer, json_response
from .runner import Controls, InProcessFake, RemoteFake

SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_PATH = b"/token"
MAX_TTL_SECONDS = 28 * 24 * 3600
MAX_DATA_BYTES = 4096
CLOCK_SKEW = 300

FCM_ERROR_TYPE = "type.googleapis.com/google.firebase.fcm.v1.FcmError"
BAD_REQUEST_TYPE = "type.googleapis.com/google.rpc.BadRequest"
INVALID_REGISTRATION_TOKEN = "The registration token is not a valid FCM registration token"

# errorCode -> (HTTP status, Google status, Google's usual message)
FCM_ERRORS: dict[str, tuple[int, str, str]] = {
    "UNREGISTERED": (404, "NOT_FOUND", "Requested entity was not found."),
    "INVALID_ARGUMENT": (400, "INVALID_ARGUMENT", "Request contains an invalid argument."),
    "SENDER_ID_MISMATCH": (403, "PERMISSION_DENIED", "SenderId mismatch"),
    "QUOTA_EXCEEDED": (
        429,
        "RESOURCE_EXHAUSTED",
        "Quota exceeded for quota metric 'Send requests' and limit 'Send requests per minute' "
        "of service 'fcm.googleapis.com'.",
    ),
    "UNAVAILABLE": (503, "UNAVAILABLE", "The service is currently unavailable."),
    "INTERNAL": (500, "INTERNAL", "Internal error encountered."),
    "THIRD_PARTY_AUTH_ERROR": (401, "UNAUTHENTICATED", "Auth error from APNS or Web Push Service"),
}
# A programmable answer that is not an FcmError: the access token was refused.
UNAUTHENTICATED = "UNAUTHENTICATED"
UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
WWW_AUTHENTICATE = (b"www-authenticate", b'Bearer realm="https://accounts.google.com/"')

MESSAGE_FIELDS = frozenset(
    {
        "name",
        "data",
        "notification",
        "android",
        "webpush",
        "apns",
        "fcm_options",
        "token",
        "topic",
        "condition",
    }
)
ANDROID_FIELDS = frozenset(
    {
        "collapse_key",
        "priority",
        "ttl",
        "restricted_package_name",
        "data",
        "notification",
        "fcm_options",
        "direct_boot_ok",
    }
)
# providers.md's list first, then the rest of Google's AndroidNotification fields.
ANDROID_NOTIFICATION_STRINGS = frozenset(
    {
        "title",
        "body",
        "title_loc_key",
        "body_loc_key",
        "icon",
        "sound",
        "tag",
        "color",
        "click_action",
        "channel_id",
        "ticker",
        "image",
        "event_time",
        "notification_priority",
        "visibility",
    }
)
ANDROID_NOTIFICATION_LISTS = frozenset({"title_loc_args", "body_loc_args"})
ANDROID_NOTIFICATION_OTHER = frozenset(
    {
        "notification_count",
        "sticky",
        "local_only",
        "default_sound",
        "default_vibrate_timings",
        "default_light_settings",
        "vibrate_timings",
        "light_settings",
        "proxy",
        "bypass_proxy_notification",
    }
)
NOTIFICATION_FIELDS = frozenset({"title", "body", "image"})
PRIORITIES = frozenset({"high", "normal", "HIGH", "NORMAL"})
_DURATION = re.compile(r"-?\d+(\.\d{1,9})?s")
_SEND_PATH = re.compile(rb"/v1/projects/([^/]+)/messages:send")
_RESERVED_DATA_KEYS = frozenset({"from", "notification", "message_type"})


class _Refusal(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__("refused")
        self.response = response


def google_error(
    status: int,
    google_status: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": google_status}
    if details is not None:
        error["details"] = details
    return json_response(status, {"error": error}, headers)


def fcm_error(code: str, message: str | None = None) -> Response:
    status, google_status, default = FCM_ERRORS[code]
    return google_error(
        status, google_status, message or default, [{"@type": FCM_ERROR_TYPE, "errorCode": code}]
    )


def unauthenticated() -> Response:
    return google_error(401, "UNAUTHENTICATED", UNAUTHENTICATED_MESSAGE, headers=[WWW_AUTHENTICATE])


def proto_error(field_path: str, message: str) -> _Refusal:
    """What Google's JSON-to-proto layer answers: BadRequest detail, no FcmError."""
    violation = {"field": field_path, "description": message}
    return _Refusal(
        google_error(
            400,
            "INVALID_ARGUMENT",
            message,
            [{"@type": BAD_REQUEST_TYPE, "fieldViolations": [violation]}],
        )
    )


def fcm_invalid(field_path: str, message: str) -> _Refusal:
    """FCM's own validation: FcmError INVALID_ARGUMENT plus the field."""
    violation = {"field": field_path, "description": message}
    return _Refusal(
        google_error(
            400,
            "INVALID_ARGUMENT",
            message,
            [
                {"@type": FCM_ERROR_TYPE, "errorCode": "INVALID_ARGUMENT"},
                {"@type": BAD_REQUEST_TYPE, "fieldViolations": [violation]},
            ],
        )
    )


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    return json_response(status, {"error": error, "error_description": description})


def _unknown(name: str, where: str) -> _Refusal:
    return proto_error(
        where,
        f"Invalid JSON payload received. Unknown name {json.dumps(name)} at '{where}': "
        "Cannot find field.",
    )


def _bad_value(where: str, kind: str, value: Any) -> _Refusal:
    return proto_error(where, f"Invalid value at '{where}' ({kind}), {json.dumps(value)}")


def _check_object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise proto_error(where, f"Invalid JSON payload received. Expected an object at '{where}'.")
    return value


def _check_string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _bad_value(where, "TYPE_STRING", value)
    return value


def _check_string_map(value: Any, where: str) -> dict[str, str]:
    mapping = _check_object(value, where)
    for i, item in enumerate(mapping.values()):
        if not isinstance(item, str):
            raise _bad_value(f"{where}[{i}].value", "TYPE_STRING", item)
    return mapping


def _check_duration(value: Any, where: str) -> float:
    if not isinstance(value, str) or _DURATION.fullmatch(value) is None:
        raise _bad_value(where, "type.googleapis.com/google.protobuf.Duration", value)
    return float(value[:-1])


def validate_message(document: Any) -> dict[str, Any]:
    """The message of a send request, or a :class:`_Refusal` with Google's answer."""
    body = _check_object(document, "")
    for name in body:
        if name not in ("message", "validate_only"):
            raise _unknown(name, "")
    if "validate_only" in body and not isinstance(body["validate_only"], bool):
        raise _bad_value("validate_only", "TYPE_BOOL", body["validate_only"])
    message = _check_object(body.get("message"), "message")
    for name in message:
        if name not in MESSAGE_FIELDS:
            raise _unknown(name, "message")
    targets = [name for name in ("token", "topic", "condition") if name in message]
    if len(targets) > 1:
        raise proto_error(
            "message",
            f"Invalid value at 'message' (oneof), oneof field 'target' is already set. "
            f"Cannot set '{targets[1]}'",
        )
    if not targets or message.get(targets[0]) == "":
        raise fcm_invalid("message", "Recipient of the message is not set.")
    if targets[0] != "token":
        raise fcm_invalid("message", "This fake sends to registration tokens only.")
    _check_string(message["token"], "message.token")
    if "data" in message:
        data = _check_string_map(message["data"], "message.data")
        size = 0
        for key, value in data.items():
            if key in _RESERVED_DATA_KEYS or key.startswith(("google", "gcm")):
                raise fcm_invalid("message.data", f"Invalid data payload key: {key}")
            size += len(key.encode()) + len(value.encode())
        if size > MAX_DATA_BYTES:
            raise fcm_invalid("message", "Android message is too big")
    if "notification" in message:
        notification = _check_object(message["notification"], "message.notification")
        for name, value in notification.items():
            if name not in NOTIFICATION_FIELDS:
                raise _unknown(name, "message.notification")
            _check_string(value, f"message.notification.{name}")
    if "android" in message:
        _validate_android(message["android"])
    for name in ("apns", "webpush", "fcm_options"):
        if name in message:
            _check_object(message[name], f"message.{name}")
    return message


def _validate_android(value: Any) -> None:
    android = _check_object(value, "message.android")
    for name in android:
        if name not in ANDROID_FIELDS:
            raise _unknown(name, "message.android")
    for name in ("collapse_key", "restricted_package_name"):
        if name in android:
            _check_string(android[name], f"message.android.{name}")
    if "priority" in android and android["priority"] not in PRIORITIES:
        raise _bad_value(
            "message.android.priority",
            "type.googleapis.com/google.firebase.fcm.v1.AndroidMessagePriority",
            android["priority"],
        )
    if "ttl" in android:
        seconds = _check_duration(android["ttl"], "message.android.ttl")
        if not 0 <= seconds <= MAX_TTL_SECONDS:
            raise fcm_invalid(
                "message.android.ttl", f"TTL must be between 0 and {MAX_TTL_SECONDS} seconds."
            )
    if "data" in android:
        _check_string_map(android["data"], "message.android.data")
    if "direct_boot_ok" in android and not isinstance(android["direct_boot_ok"], bool):
        raise _bad_value("message.android.direct_boot_ok", "TYPE_BOOL", android["direct_boot_ok"])
    if "notification" in android:
        where = "message.android.notification"
        notification = _check_object(android["notification"], where)
        for name, item in notification.items():
            if name in ANDROID_NOTIFICATION_STRINGS:
                _check_string(item, f"{where}.{name}")
            elif name in ANDROID_NOTIFICATION_LISTS:
                if not isinstance(item, list):
                    raise _bad_value(f"{where}.{name}", "TYPE_STRING", item)
                for i, arg in enumerate(item):
                    _check_string(arg, f"{where}.{name}[{i}]")
            elif name == "notification_count":
                if isinstance(item, bool) or not isinstance(item, int | str):
                    raise _bad_value(f"{where}.{name}", "TYPE_INT32", item)
                if isinstance(item, str) and not item.lstrip("-").isdigit():
                    raise _bad_value(f"{where}.{name}", "TYPE_INT32", item)
            elif name not in ANDROID_NOTIFICATION_OTHER:
                raise _unknown(name, where)


def _b64url_decode(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class _Account:
    client_email: str
    private_key_id: str
    public_key: rsa.RSAPublicKey
    project_id: str


class GoogleSite(Site):
    name = "google"

    def __init__(self, token_lifetime: int = 3599) -> None:
        super().__init__()
        self.token_lifetime = token_lifetime
        self._default_lifetime = token_lifetime
        self.accounts: dict[str, _Account] = {}
        self.secret = os.urandom(32)
        self.revoked_before = 0.0
        self.tokens_issued = 0
        self.access_cache: dict[bytes, tuple[float, float, str]] = {}
        self.token_programs: list[dict[str, Any]] = []
        self.extra_audiences: set[str] = set()
        self._message_ids = itertools.count(1)
        self.ops.update(
            add_service_account=self.op_add_service_account,
            expire_access_tokens=self.op_expire_access_tokens,
            configure=self.op_configure,
            token_fail=self.op_token_fail,
        )

    def audiences(self) -> set[str]:
        ours = {f"https://{host}:{self.url.rsplit(':', 1)[-1]}/token" for host in self.hosts}
        return {GOOGLE_TOKEN_URL, f"{self.url}/token", *ours, *self.extra_audiences}

    # Serving.

    def serve(self, request: Request) -> Response:
        path = request.path.partition(b"?")[0]
        if path == TOKEN_PATH:
            return self.serve_token(request)
        match = _SEND_PATH.fullmatch(path)
        if match is None:
            response = google_error(
                404, "NOT_FOUND", f"The requested URL {path.decode('latin-1')} was not found."
            )
            return self.finish(request, None, None, response)
        if request.method != b"POST":
            response = google_error(405, "UNIMPLEMENTED", "Method not allowed.")
            return self.finish(request, None, None, response)
        return self.serve_send(request, match.group(1).decode("latin-1"))

    def serve_send(self, request: Request, project_id: str) -> Response:
        try:
            document = json.loads(request.body)
        except ValueError:
            document = None
            parse_failed = True
        else:
            parse_failed = False
        recorded = document if self.record_bodies else None
        access = bearer(request.header(b"authorization"))
        grant = self.check_access_token(access) if access is not None else None
        if grant is None:
            return self.finish(request, None, recorded, unauthenticated())
        if grant != project_id:
            response = google_error(
                403,
                "PERMISSION_DENIED",
                f"Permission 'cloudmessaging.messages.create' denied on resource "
                f"'//cloudresourcemanager.googleapis.com/projects/{project_id}' "
                "(or it may not exist).",
                [
                    {
                        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                        "reason": "IAM_PERMISSION_DENIED",
                        "domain": "cloudresourcemanager.googleapis.com",
                        "metadata": {"permission": "cloudmessaging.messages.create"},
                    }
                ],
            )
            return self.finish(request, None, recorded, response)
        if parse_failed:
            refusal = proto_error("", "Invalid JSON payload received. Unexpected token.")
            return self.finish(request, None, recorded, refusal.response)
        try:
            message = validate_message(document)
        except _Refusal as refusal:
            return self.finish(request, None, recorded, refusal.response)
        token = message["token"].encode()
        entry = self.take_program(token) if self.programs else None
        if entry is not None and "error" in entry:
            response = self.programmed(entry)
            return self.finish(request, token, recorded, response, entry)
        if document.get("validate_only"):
            answer = {"name": f"projects/{project_id}/messages/fake_message_id"}
            return self.finish(request, token, recorded, json_response(200, answer), entry)
        name = f"projects/{project_id}/messages/0:{next(self._message_ids)}%fake"
        response = Response(200, [JSON_TYPE], json.dumps({"name": name}).encode(), deliver=token)
        return self.finish(request, token, recorded, response, entry)

    def programmed(self, entry: dict[str, Any]) -> Response:
        code = entry["error"]
        if code == UNAUTHENTICATED:
            response = unauthenticated()
        else:
            response = fcm_error(code, entry.get("message"))
        if entry.get("status"):
            response.status = int(entry["status"])
        if "retry_after" in entry:
            response.headers.append((b"retry-after", entry["retry_after"].encode()))
        return response

    def check_access_token(self, token: bytes) -> str | None:
        """The project the token may send to, or None when it is unknown or expired."""
        cached = self.access_cache.get(token)
        if cached is None:
            cached = self._decode_access_token(token)
            if cached is None:
                return None
            if len(self.access_cache) >= 10000:
                self.access_cache.clear()
            self.access_cache[token] = cached
        expires, issued, project_id = cached
        if time.time() >= expires or issued <= self.revoked_before:
            return None
        return project_id

    def _decode_access_token(self, token: bytes) -> tuple[float, float, str] | None:
        parts = token.split(b".")
        if len(parts) != 4 or parts[0] != b"ya29" or parts[1] != b"fake":
            return None
        expected = hmac.new(self.secret, parts[2], hashlib.sha256).digest()[:18]
        try:
            if not hmac.compare_digest(_b64url_decode(parts[3].decode()), expected):
                return None
            claims = json.loads(_b64url_decode(parts[2].decode()))
        except (ValueError, binascii.Error):
            return None
        return (float(claims["e"]), float(claims["i"]), str(claims["p"]))

    def issue_access_token(self, account: _Account) -> str:
        now = time.time()
        claims = {
            "e": now + self.token_lifetime,
            "i": now,
            "p": account.project_id,
            "a": account.client_email,
            "n": self.tokens_issued,
        }
        payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        mac = _b64url(hmac.new(self.secret, payload.encode(), hashlib.sha256).digest()[:18])
        self.tokens_issued += 1
        return f"ya29.fake.{payload}.{mac}"

    def serve_token(self, request: Request) -> Response:
        form = {k: v[0] for k, v in parse_qs(request.body.decode("latin-1")).items()}
        response = self.token_answer(request, form)
        return self.finish(request, None, form, response)

    def token_answer(self, request: Request, form: dict[str, str]) -> Response:
        if request.method != b"POST":
            return oauth_error("invalid_request", "Method not allowed", 405)
        if self.token_programs:
            entry = self.token_programs[0]
            if entry.get("times") is not None:
                entry["times"] -= 1
                if entry["times"] <= 0:
                    self.token_programs.pop(0)
            return oauth_error(entry["error"], entry["description"], int(entry["status"]))
        grant_type = form.get("grant_type")
        if grant_type != JWT_BEARER:
            return oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant_type or ''}")
        assertion = form.get("assertion")
        if not assertion:
            return oauth_error("invalid_request", "Missing required parameter: assertion")
        problem, account = self.check_assertion(assertion)
        if account is None:
            error, description = problem
            return oauth_error(error, description)
        answer = {
            "access_token": self.issue_access_token(account),
            "expires_in": self.token_lifetime,
            "token_type": "Bearer",
        }
        return json_response(200, answer, [(b"cache-control", b"no-cache, no-store")])

    def check_assertion(self, assertion: str) -> tuple[tuple[str, str], _Account | None]:
        bad_signature = ("invalid_grant", "Invalid JWT Signature.")
        parts = assertion.split(".")
        if len(parts) != 3:
            return ("invalid_grant", "Invalid JWT: malformed."), None
        try:
            header = json.loads(_b64url_decode(parts[0]))
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error):
            return ("invalid_grant", "Invalid JWT: malformed."), None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return ("invalid_grant", "Invalid JWT: malformed."), None
        account = self.accounts.get(str(claims.get("iss")))
        if account is None:
            return ("invalid_grant", "Invalid grant: account not found"), None
        if header.get("alg") != "RS256" or header.get("kid") != account.private_key_id:
            return bad_signature, None
        try:
            account.public_key.verify(
                signature,
                f"{parts[0]}.{parts[1]}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except InvalidSignature:
            return bad_signature, None
        scopes = str(claims.get("scope", "")).split()
        if SCOPE not in scopes:
            return ("invalid_scope", "Invalid OAuth scope or ID token audience provided."), None
        if claims.get("aud") not in self.audiences():
            return (
                "invalid_grant",
                f"Invalid JWT: Failed audience check. The right audience is {self.url}/token",
            ), None
        iat, exp = claims.get("iat"), claims.get("exp")
        now = time.time()
        if (
            not isinstance(iat, int)
            or not isinstance(exp, int)
            or exp - iat > 3600
            or exp <= iat
            or exp < now
            or iat > now + CLOCK_SKEW
        ):
            return (
                "invalid_grant",
                "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
                "timeframe. Check your iat and exp values in the JWT claim.",
            ), None
        return ("", ""), account

    # Control.

    def check_program(self, entry: dict[str, Any]) -> None:
        error = entry.get("error")
        if error is None:
            if not (entry.get("delay") or entry.get("hang") or entry.get("drop")):
                raise ControlError("program needs an error, a delay, hang or drop")
            return
        if error != UNAUTHENTICATED and error not in FCM_ERRORS:
            raise ControlError(
                f"unknown FCM errorCode {error!r}; known: {sorted(FCM_ERRORS)} and "
                f"{UNAUTHENTICATED!r} (401 without FcmError)"
            )

    def fail_entry(self, status: int) -> dict[str, Any]:
        codes = {429: "QUOTA_EXCEEDED", 500: "INTERNAL", 503: "UNAVAILABLE"}
        if status not in codes:
            raise ControlError(f"FCM fail() takes 429, 500 or 503, not {status}")
        return {"error": codes[status]}

    def reset_extra(self) -> None:
        self.token_lifetime = self._default_lifetime
        self.token_programs.clear()
        self.revoked_before = 0.0
        self.tokens_issued = 0

    def op_add_service_account(self, params: dict[str, Any]) -> None:
        if "public_key_pem" in params:
            public_key = serialization.load_pem_public_key(params["public_key_pem"].encode())
        else:
            private = serialization.load_pem_private_key(params["private_key"].encode(), None)
            public_key = private.public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise ControlError("service account keys are RSA")
        self.accounts[params["client_email"]] = _Account(
            client_email=params["client_email"],
            private_key_id=params["private_key_id"],
            public_key=public_key,
            project_id=params["project_id"],
        )

    def op_expire_access_tokens(self, params: dict[str, Any]) -> None:
        """Every access token issued so far is refused from now on (401, no FcmError)."""
        self.revoked_before = time.time()

    def op_configure(self, params: dict[str, Any]) -> dict[str, Any]:
        if "token_lifetime" in params:
            self.token_lifetime = int(params["token_lifetime"])
        if "extra_audiences" in params:
            self.extra_audiences = set(params["extra_audiences"])
        return {"token_lifetime": self.token_lifetime, "audiences": sorted(self.audiences())}

    def op_token_fail(self, params: dict[str, Any]) -> dict[str, Any]:
        entry = {
            "error": params.get("error", "invalid_grant"),
            "description": params.get("description", "Invalid JWT Signature."),
            "status": int(params.get("status", 400)),
            "times": None if params.get("times") is None else int(params["times"]),
        }
        self.token_programs.append(entry)
        return entry

    def op_stats(self, params: dict[str, Any]) -> dict[str, int]:
        stats = super().op_stats(params)
        stats["tokens_issued"] = self.tokens_issued
        return stats


@dataclass
class ServiceAccount:
    """A Google service account key file, as the server under test stores it."""

    project_id: str = "demo-bank"
    client_email: str = "push@demo-bank.iam.gserviceaccount.com"
    private_key_id: str = "0123456789abcdef0123456789abcdef01234567"
    token_uri: str = GOOGLE_TOKEN_URL
    private_key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def info(self) -> dict[str, str]:
        """The JSON key file's fields."""
        return {
            "type": "service_account",
            "project_id": self.project_id,
            "private_key_id": self.private_key_id,
            "private_key": self.private_pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
        }

    def assertion(
        self,
        *,
        aud: str | None = None,
        scope: str = SCOPE,
        iat: int | None = None,
        lifetime: int = 3600,
        kid: str | None = None,
    ) -> str:
        """The signed JWT a sender posts to ``token_uri``; arguments make broken ones."""
        now = int(time.time()) if iat is None else iat
        claims = {
            "iss": self.client_email,
            "scope": scope,
            "aud": aud or self.token_uri,
            "iat": now,
            "exp": now + lifetime,
        }
        return pyjwt.encode(
            claims,
            self.private_key,
            algorithm="RS256",
            headers={"kid": kid or self.private_key_id},
        )


class GoogleControls(Controls):
    def add_service_account(self, account: ServiceAccount | dict[str, str]) -> dict[str, str]:
        """Accept assertions signed by this account; answers its key file with ``token_uri``
        pointing at this fake."""
        info = account.info() if isinstance(account, ServiceAccount) else dict(account)
        params = {
            "client_email": info["client_email"],
            "private_key_id": info["private_key_id"],
            "project_id": info["project_id"],
        }
        if isinstance(account, ServiceAccount):
            params["public_key_pem"] = (
                account.private_key.public_key()
                .public_bytes(
                    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
                )
                .decode()
            )
        else:
            params["private_key"] = info["private_key"]
        self._call("add_service_account", params)
        token_uri = f"{self.url}/token"
        info["token_uri"] = token_uri
        if isinstance(account, ServiceAccount):
            account.token_uri = token_uri
        return info

    def program(
        self,
        token: str | None,
        error: str | None = None,
        *,
        message: str | None = None,
        status: int | None = None,
        retry_after: int | str | None = None,
        times: int | None = None,
        delay: float | None = None,
        hang: bool = False,
        drop: bool = False,
    ) -> dict[str, Any]:
        """Answer sends to ``token`` (None: every token) with FCM's ``error`` (an errorCode of
        the table, or "UNAUTHENTICATED" for a 401 without FcmError); ``message`` overrides
        Google's text, e.g. ``INVALID_REGISTRATION_TOKEN`` with "INVALID_ARGUMENT"."""
        return self._program(
            token,
            error=error,
            message=message,
            status=status,
            retry_after=retry_after,
            times=times,
            delay=delay,
            hang=hang or None,
            drop=drop or None,
        )

    def expire_access_tokens(self) -> None:
        """Refuse every access token issued so far, as after a revocation or expiry."""
        self._call("expire_access_tokens")

    def token_lifetime(self, seconds: int) -> None:
        """``expires_in`` of the tokens issued from now on (and their real lifetime)."""
        self._call("configure", {"token_lifetime": seconds})

    def token_fail(
        self,
        error: str = "invalid_grant",
        description: str = "Invalid JWT Signature.",
        *,
        status: int = 400,
        times: int | None = None,
    ) -> None:
        """Refuse token requests with this OAuth error (for ``times`` requests)."""
        self._call(
            "token_fail",
            {"error": error, "description": description, "status": status, "times": times},
        )


class GoogleFake(GoogleControls, InProcessFake):
    """In-process fake Google OAuth + FCM."""

    site_class = GoogleSite
    site: GoogleSite

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"


class GoogleRemote(GoogleControls, RemoteFake):
    """Fake Google in another process."""

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"
