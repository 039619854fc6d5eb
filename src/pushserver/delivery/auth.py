"""Provider authorization: the APNs JWT, Google's service-account OAuth flow, Huawei's tokens."""

from __future__ import annotations

import asyncio
import json
import time
from urllib.parse import urlencode

import jwt

from pushserver.delivery.transport import Pool, TransportError

FCM_SCOPE = "https://www.googleapis.com/auth/firebase.messaging"
# The assertion's audience is Google's token endpoint by name, wherever token_uri points.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
# Renew access tokens this long before they expire, so none is used at the edge.
EXPIRY_MARGIN_S = 300.0


class AuthorizationError(Exception):
    """The provider refused our credentials: an operator must fix them."""


class ApnsToken:
    """One ES256 JWT per key, reused until it reaches its renewal age."""

    def __init__(self, private_key_pem: bytes, key_id: str, team_id: str, ttl_s: float) -> None:
        self._key = private_key_pem
        self._key_id = key_id
        self._team_id = team_id
        self._ttl_s = ttl_s
        self._token = ""
        self._issued = 0.0

    def current(self) -> str:
        if not self._token or time.time() - self._issued >= self._ttl_s:
            self._issue()
        return self._token

    def renew(self, refused: str) -> None:
        """Make a new JWT, unless another request already replaced the refused one."""
        if refused == self._token:
            self._issue()

    def _issue(self) -> None:
        now = time.time()
        self._token = jwt.encode(
            {"iss": self._team_id, "iat": int(now)},
            self._key,
            algorithm="ES256",
            # Apple's header is exactly {"alg", "kid"}: no "typ".
            headers={"kid": self._key_id, "typ": None},
        )
        self._issued = now


class _CachedAccessToken:
    """An OAuth access token fetched by one caller while the others wait for it."""

    def __init__(self) -> None:
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> str:
        if self._token and time.monotonic() < self._expires_at:
            return self._token
        async with self._lock:
            if not self._token or time.monotonic() >= self._expires_at:
                self._token, lifetime_s = await self._fetch()
                self._expires_at = time.monotonic() + max(lifetime_s - EXPIRY_MARGIN_S, 30.0)
        return self._token

    def invalidate(self, refused: str) -> None:
        if refused == self._token:
            self._token = ""

    async def _fetch(self) -> tuple[str, float]:
        raise NotImplementedError

    @staticmethod
    async def _post_form(pool: Pool, url: str, form: dict[str, str]) -> tuple[str, float]:
        try:
            response = await pool.post(
                url,
                {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
                urlencode(form).encode(),
            )
        except TransportError:
            raise
        try:
            document = json.loads(response.body)
        except (UnicodeDecodeError, ValueError):
            document = {}
        if response.status >= 500 or response.status == 429:
            raise TransportError(f"token endpoint answered HTTP {response.status}")
        token = document.get("access_token") if isinstance(document, dict) else None
        if response.status != 200 or not isinstance(token, str):
            detail = document.get("error_description") or document.get("error") or ""
            raise AuthorizationError(f"token endpoint refused: HTTP {response.status} {detail}")
        return token, float(document.get("expires_in") or 3600)


class GoogleAccessToken(_CachedAccessToken):
    """An access token for FCM, from a service account's signed assertion."""

    def __init__(self, pool: Pool, account: dict[str, str]) -> None:
        super().__init__()
        self._pool = pool
        self._account = account

    async def _fetch(self) -> tuple[str, float]:
        now = int(time.time())
        token_uri = self._account["token_uri"]
        headers = (
            {"kid": self._account["private_key_id"]} if self._account.get("private_key_id") else {}
        )
        assertion = jwt.encode(
            {
                "iss": self._account["client_email"],
                "scope": FCM_SCOPE,
                "aud": GOOGLE_TOKEN_AUDIENCE,
                "iat": now,
                "exp": now + 3600,
            },
            self._account["private_key"],
            algorithm="RS256",
            headers=headers,
        )
        form = {"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion}
        return await self._post_form(self._pool, token_uri, form)


class HuaweiAccessToken(_CachedAccessToken):
    """An access token for HMS Push Kit, from the app's client credentials."""

    def __init__(self, pool: Pool, token_url: str, client_id: str, client_secret: str) -> None:
        super().__init__()
        self._pool = pool
        self._url = token_url
        self._client_id = client_id
        self._client_secret = client_secret

    async def _fetch(self) -> tuple[str, float]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self._client_id,
            "client_secret": self._client_secret,
        }
        return await self._post_form(self._pool, self._url, form)
