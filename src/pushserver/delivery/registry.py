"""Per-process cache of each application's senders, rebuilt when its credentials change."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from pushserver.applications.service import sealing_context
from pushserver.db.engine import Database
from pushserver.db.models import PushCredential
from pushserver.delivery.auth import ApnsToken, GoogleAccessToken, HuaweiAccessToken
from pushserver.delivery.encrypted import EncryptedMessages
from pushserver.delivery.senders import ApnsSender, FcmSender, HmsSender, Sender
from pushserver.delivery.transport import Pool, PoolConfig
from pushserver.security.secretbox import MasterKeyError, SecretBox
from pushserver.settings import Settings

log = logging.getLogger(__name__)

PROVIDER_NAMES = {"ios": "APNs", "android": "FCM", "huawei": "HMS"}


@dataclass
class AppSenders:
    version: datetime
    senders: dict[str, Sender] = field(default_factory=dict)
    # Why a platform has no sender: no credentials, or credentials that cannot be opened.
    missing: dict[str, str] = field(default_factory=dict)
    pools: list[Pool] = field(default_factory=list)

    def reason_missing(self, platform: str) -> str:
        name = PROVIDER_NAMES.get(platform, platform)
        return self.missing.get(platform, f"the application has no {name} credentials")


class SenderRegistry:
    def __init__(self, settings: Settings, database: Database, box: SecretBox) -> None:
        self._settings = settings
        self._database = database
        self._box = box
        self._apps: dict[int, AppSenders] = {}
        self._checked_at = 0.0
        self._lock = asyncio.Lock()
        self._retired: set[asyncio.Task[None]] = set()
        # Sealing needs the master key (device keys are stored under it), as senders do.
        self.encryption = EncryptedMessages(
            box, settings.encrypted_message_title, settings.encrypted_message_body
        )

    async def get(self, app_id: int) -> AppSenders | None:
        """The app's senders, or None when the application does not exist."""
        await self._drop_changed()
        cached = self._apps.get(app_id)
        if cached is not None:
            return cached
        async with self._lock:
            if app_id not in self._apps:
                async with self._database.transaction() as session:
                    row = await session.scalar(
                        select(PushCredential).where(PushCredential.app_id == app_id)
                    )
                if row is None:
                    return None
                self._apps[app_id] = self._build(row)
            return self._apps[app_id]

    async def _drop_changed(self) -> None:
        """At most every few seconds, drop apps whose credentials changed since they were built."""
        if time.monotonic() - self._checked_at < self._settings.credentials_refresh_s:
            return
        self._checked_at = time.monotonic()
        if not self._apps:
            return
        query = select(PushCredential.app_id, PushCredential.timestamp_last_updated)
        async with self._database.transaction() as session:
            versions = dict((await session.execute(query)).all())
        for app_id, cached in list(self._apps.items()):
            if versions.get(app_id) != cached.version:
                del self._apps[app_id]
                self._retire(cached)
                log.info("credentials reloaded app_id=%s", app_id)

    def _retire(self, cached: AppSenders) -> None:
        # Requests in flight keep their pools until they end; closed after the longest of them.
        async def close_later() -> None:
            await asyncio.sleep(self._settings.provider_timeout_s + 1)
            for pool in cached.pools:
                await pool.close()

        task = asyncio.create_task(close_later())
        self._retired.add(task)
        task.add_done_callback(self._retired.discard)

    def _pool(self, app: AppSenders, connections: int, streams: int, http2_only: bool) -> Pool:
        settings = self._settings
        pool = Pool(
            PoolConfig(
                connections=connections,
                streams_per_connection=streams,
                connect_timeout_s=settings.provider_connect_timeout_s,
                timeout_s=settings.provider_timeout_s,
                ca_file=settings.provider_ca_file,
                http2_only=http2_only,
            )
        )
        app.pools.append(pool)
        return pool

    def _build(self, row: PushCredential) -> AppSenders:
        settings = self._settings
        app = AppSenders(version=row.timestamp_last_updated)
        try:
            if row.ios_private_key is not None:
                p8 = self._box.open(
                    row.ios_private_key, sealing_context("ios_private_key", row.app_id)
                )
                assert row.ios_key_id and row.ios_team_id and row.ios_bundle
                token = ApnsToken(p8, row.ios_key_id, row.ios_team_id, settings.apns_token_ttl_s)
                pools = {
                    env: self._pool(
                        app, settings.apns_connections, settings.apns_streams_per_connection, True
                    )
                    for env in ("production", "development")
                }
                urls = {
                    "production": settings.apns_production_url.rstrip("/"),
                    "development": settings.apns_development_url.rstrip("/"),
                }
                app.senders["ios"] = ApnsSender(
                    token, row.ios_bundle, row.ios_environment, pools, urls
                )
        except MasterKeyError as exc:
            app.missing["ios"] = f"the APNs key cannot be opened: {exc}"

        try:
            if row.android_private_key is not None:
                raw = self._box.open(
                    row.android_private_key, sealing_context("android_private_key", row.app_id)
                )
                account = json.loads(raw)
                pool = self._pool(
                    app, settings.fcm_connections, settings.fcm_streams_per_connection, False
                )
                project = row.android_project_id or account["project_id"]
                url = f"{settings.fcm_url.rstrip('/')}/v1/projects/{project}/messages:send"
                app.senders["android"] = FcmSender(pool, url, GoogleAccessToken(pool, account))
        except MasterKeyError as exc:
            app.missing["android"] = f"the Firebase service account cannot be opened: {exc}"

        try:
            if row.huawei_client_secret is not None:
                secret = self._box.open(
                    row.huawei_client_secret, sealing_context("huawei_client_secret", row.app_id)
                ).decode()
                assert row.huawei_client_id and row.huawei_project_id
                pool = self._pool(
                    app, settings.hms_connections, settings.hms_streams_per_connection, False
                )
                access = HuaweiAccessToken(
                    pool, settings.hms_token_url, row.huawei_client_id, secret
                )
                url = f"{settings.hms_url.rstrip('/')}/v2/{row.huawei_project_id}/messages:send"
                app.senders["huawei"] = HmsSender(pool, url, access)
        except MasterKeyError as exc:
            app.missing["huawei"] = f"the Huawei client secret cannot be opened: {exc}"

        return app

    async def close(self) -> None:
        for task in list(self._retired):
            task.cancel()
        for app in self._apps.values():
            for pool in app.pools:
                await pool.close()
        self._apps.clear()
