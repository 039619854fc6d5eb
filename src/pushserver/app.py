"""The ASGI application and its life cycle."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from pushserver import __version__
from pushserver.api import handlers
from pushserver.api.auth import Authentication
from pushserver.api.context import AppContext
from pushserver.api.limits import JsonBodies
from pushserver.api.metrics import RequestMetrics
from pushserver.api.ratelimit import RequestRate
from pushserver.applications.endpoints import router as applications_router
from pushserver.campaigns.endpoints import router as campaigns_router
from pushserver.db.engine import Database
from pushserver.delivery.registry import SenderRegistry
from pushserver.delivery.worker import Worker
from pushserver.devices.endpoints import router as devices_router
from pushserver.messages.endpoints import router as messages_router
from pushserver.powerauth.client import PowerAuthClient
from pushserver.security.apikeys import KeyVerifier
from pushserver.security.secretbox import SecretBox, load_master_key
from pushserver.service.endpoints import router as service_router
from pushserver.settings import Settings

log = logging.getLogger(__name__)

DESCRIPTION = """
Registers mobile devices and delivers push notifications through Apple APNs, Google FCM and
Huawei HMS. Every request but `/health/*` needs `Authorization: Bearer <API key>`; keys are
made with `pushserver apikey create --role admin|sender|registrar|callback`.
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    secrets = SecretBox(load_master_key(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        database = Database(settings)
        try:
            await database.check_schema()
        except BaseException:
            await database.dispose()
            raise
        if settings.auth_disabled:
            log.warning("authentication is DISABLED: every request is treated as admin")
        registry = SenderRegistry(settings, database, secrets)
        context = AppContext(
            settings=settings,
            database=database,
            secrets=secrets,
            keys=KeyVerifier(settings.api_key_cache_s),
            registry=registry,
            powerauth=PowerAuthClient.from_settings(settings),
            rate=RequestRate(settings.rate_limit) if settings.rate_limit else None,
        )
        worker_task = None
        if settings.runs_worker_in_serve:
            context.worker = Worker(settings, database, registry)
            worker_task = asyncio.create_task(context.worker.run())
        app.state.context = context
        log.info(
            "server ready database=%s worker=%s powerauth=%s",
            database.engine.url.render_as_string(hide_password=True),
            "in-process" if worker_task else "separate",
            settings.powerauth_url or "none",
        )
        try:
            yield
        finally:
            if context.worker is not None and worker_task is not None:
                context.worker.stop()
                await worker_task
            await registry.close()
            if context.powerauth is not None:
                await context.powerauth.close()
            await database.dispose()

    app = FastAPI(
        title="Push Server",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    handlers.install(app)
    for router in (
        service_router,
        devices_router,
        messages_router,
        campaigns_router,
        applications_router,
    ):
        app.include_router(router)
    app.add_middleware(JsonBodies, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(Authentication)
    app.add_middleware(RequestMetrics)
    return app
