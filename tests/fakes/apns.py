"""Fake Apple Push Notification service: ``POST /3/device/<token>`` over TLS with HTTP/2.

Checks what ``docs/providers.md`` (shared docs) lists: the ES256 provider token (kid, signature,
iss, age), every ``apns-*`` header rule, and the payload limits, answering with Apple's status and
``{"reason": ...}``. A verified JWT string is cached, so a sender that reuses its token pays for
one verification; the hot path is a few dictionary look-ups.

Checks run in this order, the first failure answering: method and path, duplicate headers,
provider token, device token format, topic, push type, priority, expiration, collapse id,
apns-id, payload; then programmed answers (per token, or for every request) and success.

Beyond the table in providers.md: ``MethodNotAllowed`` (405), ``BadPath`` (404),
``MissingDeviceToken``, ``TooManyProviderTokenUpdates`` (only when ``token_update_interval`` is
set) and ``BadPayload`` for a body that is not a JSON object with an ``aps`` dictionary, a
reason of this fake's own (Apple documents none for it) so that a sender bug cannot pass.
Stricter than Apple on purpose: a missing ``apns-push-type`` is InvalidPushType (Apple only
recommends the header outside watchOS, but the server must always send it), and device tokens
must be 64 to 200 hex digits (``strict_device_tokens``; BadDeviceToken otherwise).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt as pyjwt
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from .core import ControlError, Request, Response, Site
from .runner import Controls, InProcessFake, RemoteFake

REASONS: dict[str, int] = {
    "BadCollapseId": 400,
    "BadDeviceToken": 400,
    "BadExpirationDate": 400,
    "BadMessageId": 400,
    "BadPriority": 400,
    "BadTopic": 400,
    "DeviceTokenNotForTopic": 400,
    "DuplicateHeaders": 400,
    "IdleTimeout": 400,
    "InvalidPushType": 400,
    "MissingDeviceToken": 400,
    "MissingTopic": 400,
    "PayloadEmpty": 400,
    "TopicDisallowed": 400,
    "BadPayload": 400,
    "BadCertificate": 403,
    "BadCertificateEnvironment": 403,
    "ExpiredProviderToken": 403,
    "Forbidden": 403,
    "InvalidProviderToken": 403,
    "MissingProviderToken": 403,
    "UnrelatedKeyIdInToken": 403,
    "BadEnvironmentKeyIdInToken": 403,
    "BadPath": 404,
    "MethodNotAllowed": 405,
    "ExpiredToken": 410,
    "Unregistered": 410,
    "PayloadTooLarge": 413,
    "TooManyProviderTokenUpdates": 429,
    "TooManyRequests": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
    "Shutdown": 503,
}
MAX_PAYLOAD = 4096
MAX_COLLAPSE_ID = 64
ENVIRONMENTS = ("production", "development")
# Tolerated clock skew for an iat in the future; beyond it the token is refused as invalid.
IAT_FUTURE_SKEW = 300

_DEVICE_TOKEN = re.compile(rb"[0-9a-fA-F]{64,200}")
_UUID = re.compile(rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_APNS_HEADERS = frozenset(
    {
        b"authorization",
        b"apns-topic",
        b"apns-push-type",
        b"apns-priority",
        b"apns-expiration",
        b"apns-collapse-id",
        b"apns-id",
    }
)
_ERROR_BODIES = {reason: json.dumps({"reason": reason}).encode() for reason in REASONS}
_PREFIX = b"/3/device/"


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64decode(data + b"=" * (-len(data) % 4))


@dataclass
class _Key:
    key_id: str
    team_id: str
    public_key: ec.EllipticCurvePublicKey
    topics: frozenset[bytes]
    environments: frozenset[str]


class ApnsSite(Site):
    name = "apns"

    def __init__(
        self,
        environment: str = "production",
        jwt_max_age: float = 3600,
        strict_device_tokens: bool = True,
        token_update_interval: float | None = None,
    ) -> None:
        super().__init__()
        if environment not in ENVIRONMENTS:
            raise ValueError(f"environment must be one of {ENVIRONMENTS}")
        self.environment = environment
        self.jwt_max_age = jwt_max_age
        self.strict_device_tokens = strict_device_tokens
        self.token_update_interval = token_update_interval
        self._defaults = (jwt_max_age, strict_device_tokens, token_update_interval)
        self.keys: dict[str, _Key] = {}
        self.devices: dict[bytes, tuple[bytes, str | None]] = {}
        # authorization header -> (refusal reason or None, key, iat)
        self.jwt_cache: dict[bytes, tuple[str | None, _Key | None, int]] = {}
        self.jwt_verifications = 0
        self.good_payloads: set[bytes] = set()
        self.ops.update(
            add_key=self.op_add_key,
            register_device=self.op_register_device,
            configure=self.op_configure,
        )

    # Serving.

    def serve(self, request: Request) -> Response:
        if not request.stream_id:
            return Response(505, [], b"APNs speaks HTTP/2 only")
        if request.method != b"POST":
            return self.refuse(request, None, "MethodNotAllowed")
        path = request.path
        if not path.startswith(_PREFIX):
            return self.refuse(request, None, "BadPath")
        token = path[10:]
        headers = request.headers
        h = dict(headers)
        if len(h) != len(headers) and self.has_duplicates(headers):
            return self.refuse(request, token, "DuplicateHeaders")
        auth = h.get(b"authorization")
        if auth is None:
            return self.refuse(request, token, "MissingProviderToken")
        verdict = self.jwt_cache.get(auth)
        if verdict is None:
            verdict = self.verify_jwt(auth)
        reason, key, iat = verdict
        if reason is not None:
            return self.refuse(request, token, reason)
        assert key is not None
        now = time.time()
        if now - iat > self.jwt_max_age:
            return self.refuse(request, token, "ExpiredProviderToken")
        if self.environment not in key.environments:
            return self.refuse(request, token, "BadEnvironmentKeyIdInToken")
        if self.token_update_interval is not None and self.token_churn(request, auth, now):
            return self.refuse(request, token, "TooManyProviderTokenUpdates")
        if not token:
            return self.refuse(request, token, "MissingDeviceToken")
        if self.strict_device_tokens and _DEVICE_TOKEN.fullmatch(token) is None:
            return self.refuse(request, token, "BadDeviceToken")
        topic = h.get(b"apns-topic")
        if topic is None:
            return self.refuse(request, token, "MissingTopic")
        if topic not in key.topics:
            return self.refuse(request, token, "TopicDisallowed")
        if self.devices:
            registered = self.devices.get(token)
            if registered is not None:
                if registered[1] is not None and registered[1] != self.environment:
                    return self.refuse(request, token, "BadDeviceToken")
                if registered[0] != topic:
                    return self.refuse(request, token, "DeviceTokenNotForTopic")
        push_type = h.get(b"apns-push-type")
        if push_type != b"alert" and push_type != b"background":
            return self.refuse(request, token, "InvalidPushType")
        # Apple's default priority is 10, which a background push must not use.
        priority = h.get(b"apns-priority", b"10")
        if (priority != b"10" and priority != b"5") or (
            priority == b"10" and push_type == b"background"
        ):
            return self.refuse(request, token, "BadPriority")
        expiration = h.get(b"apns-expiration")
        if expiration is not None and not expiration.isdigit():
            return self.refuse(request, token, "BadExpirationDate")
        collapse_id = h.get(b"apns-collapse-id")
        if collapse_id is not None and len(collapse_id) > MAX_COLLAPSE_ID:
            return self.refuse(request, token, "BadCollapseId")
        apns_id = h.get(b"apns-id")
        if apns_id is not None and _UUID.fullmatch(apns_id) is None:
            return self.refuse(request, token, "BadMessageId")
        body = request.body
        if not body:
            return self.refuse(request, token, "PayloadEmpty", apns_id)
        if len(body) > MAX_PAYLOAD:
            return self.refuse(request, token, "PayloadTooLarge", apns_id)
        if body not in self.good_payloads and not self.check_payload(body):
            return self.refuse(request, token, "BadPayload", apns_id)
        if apns_id is None:
            apns_id = str(uuid.uuid4()).upper().encode()
        entry = self.take_program(token) if self.programs else None
        if entry is not None and "reason" in entry:
            return self.programmed(request, token, entry, apns_id)
        response = Response(200, [(b"apns-id", apns_id)], b"", deliver=token)
        if entry is None and not self.record_bodies and not self.faults.hang:
            # The benchmark path: nothing to record beyond the counts.
            attempts = self.attempts
            attempts[token] = attempts.get(token, 0) + 1
            if self.faults.delay:
                response.delay = self.faults.delay
            return response
        return self.finish(request, token, self.parsed(body), response, entry)

    def parsed(self, body: bytes) -> Any:
        if not self.record_bodies:
            return None
        try:
            return json.loads(body)
        except ValueError:
            return body.decode("utf-8", "replace")

    def check_payload(self, body: bytes) -> bool:
        try:
            document = json.loads(body)
        except ValueError:
            return False
        if not isinstance(document, dict) or not isinstance(document.get("aps"), dict):
            return False
        if len(self.good_payloads) >= 4096:
            self.good_payloads.clear()
        self.good_payloads.add(body)
        return True

    def has_duplicates(self, headers: list[tuple[bytes, bytes]]) -> bool:
        seen: set[bytes] = set()
        for name, _value in headers:
            if name in _APNS_HEADERS:
                if name in seen:
                    return True
                seen.add(name)
        return False

    def token_churn(self, request: Request, auth: bytes, now: float) -> bool:
        """Apple refuses a new provider token on a connection within 20 minutes of the last."""
        connection = request.connection
        state = getattr(connection, "apns_token", None)
        if state is None or state[0] == auth:
            if state is None:
                connection.apns_token = (auth, now)
            return False
        assert self.token_update_interval is not None
        if now - state[1] < self.token_update_interval:
            return True
        connection.apns_token = (auth, now)
        return False

    def verify_jwt(self, auth: bytes) -> tuple[str | None, _Key | None, int]:
        self.jwt_verifications += 1
        verdict = self._verify(auth)
        if len(self.jwt_cache) >= 10000:
            self.jwt_cache.clear()
        self.jwt_cache[auth] = verdict
        return verdict

    def _verify(self, auth: bytes) -> tuple[str | None, _Key | None, int]:
        invalid: tuple[str | None, _Key | None, int] = ("InvalidProviderToken", None, 0)
        if auth[:7].lower() != b"bearer ":
            return invalid
        parts = auth[7:].strip().split(b".")
        if len(parts) != 3:
            return invalid
        try:
            header = json.loads(_b64url(parts[0]))
            claims = json.loads(_b64url(parts[1]))
            signature = _b64url(parts[2])
        except (ValueError, binascii.Error):
            return invalid
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return invalid
        if header.get("alg") != "ES256":
            return invalid
        key = self.keys.get(str(header.get("kid")))
        if key is None or len(signature) != 64:
            return invalid
        der = encode_dss_signature(
            int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        )
        try:
            key.public_key.verify(der, parts[0] + b"." + parts[1], ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return invalid
        iat = claims.get("iat")
        if claims.get("iss") != key.team_id or not isinstance(iat, int) or isinstance(iat, bool):
            return invalid
        if iat > time.time() + IAT_FUTURE_SKEW:
            return invalid
        return (None, key, iat)

    def refuse(
        self, request: Request, token: bytes | None, reason: str, apns_id: bytes | None = None
    ) -> Response:
        if apns_id is None or _UUID.fullmatch(apns_id) is None:
            apns_id = str(uuid.uuid4()).upper().encode()
        response = Response(REASONS[reason], [(b"apns-id", apns_id)], _ERROR_BODIES[reason])
        return self.finish(request, token, self.parsed(request.body), response)

    def programmed(
        self, request: Request, token: bytes, entry: dict[str, Any], apns_id: bytes
    ) -> Response:
        reason = entry["reason"]
        document: dict[str, Any] = {"reason": reason}
        if entry["status"] == 410:
            document["timestamp"] = entry["timestamp"]
        headers = [(b"apns-id", apns_id)]
        if "retry_after" in entry:
            headers.append((b"retry-after", entry["retry_after"].encode()))
        response = Response(entry["status"], headers, json.dumps(document).encode())
        return self.finish(request, token, self.parsed(request.body), response, entry)

    # Control.

    def check_program(self, entry: dict[str, Any]) -> None:
        reason = entry.get("reason")
        if reason is None:
            if not (entry.get("delay") or entry.get("hang") or entry.get("drop")):
                raise ControlError("program needs a reason, a delay, hang or drop")
            return
        if reason not in REASONS:
            raise ControlError(f"unknown APNs reason {reason!r}; known: {sorted(REASONS)}")
        entry["status"] = int(entry.get("status") or REASONS[reason])
        if entry["status"] == 410 and "timestamp" not in entry:
            entry["timestamp"] = int(time.time() * 1000)

    def fail_entry(self, status: int) -> dict[str, Any]:
        reasons = {429: "TooManyRequests", 500: "InternalServerError", 503: "ServiceUnavailable"}
        if status not in reasons:
            raise ControlError(f"APNs fail() takes 429, 500 or 503, not {status}")
        return {"reason": reasons[status]}

    def reset_extra(self) -> None:
        self.jwt_max_age, self.strict_device_tokens, self.token_update_interval = self._defaults
        self.devices.clear()
        self.jwt_cache.clear()
        self.jwt_verifications = 0

    def op_add_key(self, params: dict[str, Any]) -> None:
        public_key = serialization.load_pem_public_key(params["public_key_pem"].encode())
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or not isinstance(
            public_key.curve, ec.SECP256R1
        ):
            raise ControlError("APNs keys are EC P-256")
        environments = frozenset(params.get("environments") or ENVIRONMENTS)
        if not environments <= set(ENVIRONMENTS):
            raise ControlError(f"environments must be among {ENVIRONMENTS}")
        topics = params["topics"]
        if isinstance(topics, str):
            topics = [topics]
        self.keys[params["key_id"]] = _Key(
            key_id=params["key_id"],
            team_id=params["team_id"],
            public_key=public_key,
            topics=frozenset(t.encode() for t in topics),
            environments=environments,
        )
        self.jwt_cache.clear()

    def op_register_device(self, params: dict[str, Any]) -> None:
        token = params["token"].encode()
        self.devices[token] = (params["topic"].encode(), params.get("environment"))

    def op_configure(self, params: dict[str, Any]) -> dict[str, Any]:
        if "jwt_max_age" in params:
            self.jwt_max_age = float(params["jwt_max_age"])
        if "strict_device_tokens" in params:
            self.strict_device_tokens = bool(params["strict_device_tokens"])
        if "token_update_interval" in params:
            value = params["token_update_interval"]
            self.token_update_interval = None if value is None else float(value)
        return {
            "environment": self.environment,
            "jwt_max_age": self.jwt_max_age,
            "strict_device_tokens": self.strict_device_tokens,
            "token_update_interval": self.token_update_interval,
        }

    def op_stats(self, params: dict[str, Any]) -> dict[str, int]:
        stats = super().op_stats(params)
        stats["jwt_verifications"] = self.jwt_verifications
        return stats


@dataclass
class ApnsKey:
    """A provider signing key as Apple issues it (.p8), for the sender and the fake alike."""

    key_id: str = "ABC123DEFG"
    team_id: str = "DEF123GHIJ"
    topics: tuple[str, ...] = ("com.example.app",)
    environments: tuple[str, ...] = ENVIRONMENTS
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    @property
    def topic(self) -> str:
        return self.topics[0]

    @property
    def private_pem(self) -> bytes:
        """The PKCS#8 PEM of a downloaded ``AuthKey_<key id>.p8``."""
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def jwt(self, iat: int | None = None, *, kid: str | None = None, iss: str | None = None) -> str:
        """A provider token; the arguments make the broken ones tests need."""
        claims = {"iss": iss or self.team_id, "iat": int(time.time()) if iat is None else iat}
        return pyjwt.encode(
            claims, self.private_key, algorithm="ES256", headers={"kid": kid or self.key_id}
        )

    def registration(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "team_id": self.team_id,
            "public_key_pem": self.public_pem,
            "topics": list(self.topics),
            "environments": list(self.environments),
        }


def device_token(n: int) -> str:
    """A well-formed device token (64 hex digits) numbered ``n``."""
    return f"{n:064x}"


class ApnsControls(Controls):
    def add_key(self, key: ApnsKey) -> None:
        """Accept provider tokens signed by ``key`` for its topics and environments."""
        self._call("add_key", key.registration())

    def register_device(self, token: str, topic: str, environment: str | None = None) -> None:
        """Bind a token to an app (DeviceTokenNotForTopic elsewhere) and optionally to an
        environment (BadDeviceToken on the other host)."""
        self._call("register_device", {"token": token, "topic": topic, "environment": environment})

    def program(
        self,
        token: str | None,
        reason: str | None = None,
        *,
        status: int | None = None,
        timestamp: int | None = None,
        retry_after: int | str | None = None,
        times: int | None = None,
        delay: float | None = None,
        hang: bool = False,
        drop: bool = False,
    ) -> dict[str, Any]:
        """Answer requests for ``token`` (None: every token) with ``reason`` and its status from
        Apple's table; ``timestamp`` (ms) for 410 defaults to now; ``times`` limits it to the
        next N attempts, after which the token succeeds again. Without a reason, ``delay``,
        ``hang`` or ``drop`` apply to an otherwise successful answer."""
        return self._program(
            token,
            reason=reason,
            status=status,
            timestamp=timestamp,
            retry_after=retry_after,
            times=times,
            delay=delay,
            hang=hang or None,
            drop=drop or None,
        )

    def configure(
        self,
        *,
        jwt_max_age: float | None = None,
        strict_device_tokens: bool | None = None,
        token_update_interval: float | bool | None = False,
    ) -> dict[str, Any]:
        """``token_update_interval``: seconds between provider-token changes on a connection
        below which Apple answers 429 TooManyProviderTokenUpdates (None: not checked)."""
        params: dict[str, Any] = {}
        if jwt_max_age is not None:
            params["jwt_max_age"] = jwt_max_age
        if strict_device_tokens is not None:
            params["strict_device_tokens"] = strict_device_tokens
        if token_update_interval is not False:
            params["token_update_interval"] = token_update_interval
        return dict(self._call("configure", params))


class ApnsFake(ApnsControls, InProcessFake):
    """In-process fake APNs. ``ApnsFake(ca, environment="development")`` for the sandbox."""

    site_class = ApnsSite
    site: ApnsSite


class ApnsRemote(ApnsControls, RemoteFake):
    """Fake APNs in another process."""
