"""``/push/device/*``: registration, removal and the activation status callback."""

from __future__ import annotations

import asyncio
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError

from pushserver.api.auth import authenticated
from pushserver.api.context import AppContext, get_context
from pushserver.api.envelope import OkResponse, RequestEnvelope, error_responses, ok
from pushserver.api.routing import route
from pushserver.db.engine import is_retryable
from pushserver.devices import service
from pushserver.devices.schemas import (
    CreateDeviceMultiRequest,
    CreateDeviceRequest,
    DeleteDeviceRequest,
    StatusUpdateRequest,
)
from pushserver.errors import Conflict

router = APIRouter(prefix="/push/device", tags=["Devices"], dependencies=authenticated)
Context = Annotated[AppContext, Depends(get_context)]

# Registrations racing for one activation or one token: the loser retries on fresh rows.
_UPSERT_ATTEMPTS = 3
_RETRY_JITTER_MS = 20


async def _register(
    context: AppContext, request: CreateDeviceRequest | CreateDeviceMultiRequest
) -> None:
    activations = await service.resolve_activations(request, context.powerauth)
    for attempt in range(_UPSERT_ATTEMPTS):
        if attempt:
            # Losers of one race that retry in step would only race again.
            await asyncio.sleep(secrets.randbelow(_RETRY_JITTER_MS * attempt) / 1000)
        try:
            async with context.database.transaction() as session:
                await service.register(session, context.secrets, request, activations)
            return
        except DBAPIError as exc:
            if not _lost_race(exc):
                raise
    raise Conflict("the device was changed concurrently; try again")


def _lost_race(exc: DBAPIError) -> bool:
    return isinstance(exc, IntegrityError) or is_retryable(exc)


@router.post(
    "/create",
    response_model=OkResponse,
    responses=error_responses(404, 409, 502),
    summary="Register a push token for an activation",
)
async def create_device(
    envelope: RequestEnvelope[CreateDeviceRequest], context: Context
) -> JSONResponse:
    await _register(context, envelope.requestObject)
    return ok()


@router.post(
    "/create/multi",
    response_model=OkResponse,
    responses=error_responses(404, 409, 502),
    summary="Register one push token for several activations on one phone",
)
async def create_device_multi(
    envelope: RequestEnvelope[CreateDeviceMultiRequest], context: Context
) -> JSONResponse:
    await _register(context, envelope.requestObject)
    return ok()


@route(
    router,
    ["POST", "PUT"],
    "/status/update",
    response_model=OkResponse,
    responses=error_responses(502),
    summary="Activation status callback (bare body): caches the status on every device of it",
)
async def update_status(request: StatusUpdateRequest, context: Context) -> JSONResponse:
    status = await service.resolve_status(request, context.powerauth)
    async with context.database.transaction() as session:
        await service.update_status(session, request.activationId, status)
    return ok()


@route(
    router,
    ["POST", "DELETE"],
    "/delete",
    response_model=OkResponse,
    responses=error_responses(404),
    summary="Remove a push token from an application",
)
async def delete_device(
    envelope: RequestEnvelope[DeleteDeviceRequest], context: Context
) -> JSONResponse:
    request = envelope.requestObject
    async with context.database.transaction() as session:
        await service.remove(session, request.app_id, request.token)
    return ok()
