"""What every request needs from the process: settings, database, secrets, key verifier."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from pushserver.api.ratelimit import RequestRate
from pushserver.db.engine import Database
from pushserver.delivery.registry import SenderRegistry
from pushserver.delivery.worker import Worker
from pushserver.powerauth.client import PowerAuthClient
from pushserver.security.apikeys import KeyVerifier
from pushserver.security.secretbox import SecretBox
from pushserver.settings import Settings


@dataclass(slots=True)
class AppContext:
    settings: Settings
    database: Database
    secrets: SecretBox
    keys: KeyVerifier
    registry: SenderRegistry
    worker: Worker | None = None
    # None when no PowerAuth Server is configured.
    powerauth: PowerAuthClient | None = None
    # None when no rate limit is configured.
    rate: RequestRate | None = None


def get_context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context
