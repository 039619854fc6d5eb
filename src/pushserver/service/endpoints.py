"""``/push/service/status``, ``/health/*`` and ``/metrics``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from pushserver import __version__
from pushserver.api.auth import authenticated
from pushserver.api.context import AppContext, get_context
from pushserver.api.envelope import (
    ApiModel,
    ErrorResponse,
    ObjectResponse,
    OkResponse,
    error_responses,
    ok,
)
from pushserver.api.handlers import error_response
from pushserver.db.types import utcnow

router = APIRouter()
Context = Annotated[AppContext, Depends(get_context)]


class ServiceStatus(ApiModel):
    application_name: str
    application_display_name: str
    application_environment: str
    version: str
    timestamp: datetime


@router.get(
    "/push/service/status",
    tags=["Service"],
    response_model=ObjectResponse[ServiceStatus],
    responses=error_responses(),
    dependencies=authenticated,
    summary="Name, environment, version and time of this server",
)
async def service_status(context: Context) -> JSONResponse:
    settings = context.settings
    return ok(
        ServiceStatus(
            application_name=settings.application_name,
            application_display_name=settings.application_display_name,
            application_environment=settings.application_environment,
            version=__version__,
            timestamp=utcnow(),
        )
    )


@router.get("/health/live", tags=["Health"], response_model=OkResponse, summary="The process is up")
async def live() -> JSONResponse:
    return ok()


@router.get(
    "/health/ready",
    tags=["Health"],
    response_model=OkResponse,
    responses={503: {"model": ErrorResponse, "description": "Database unreachable"}},
    summary="The database answers",
)
async def ready(context: Context) -> JSONResponse:
    if await context.database.ping():
        return ok()
    return error_response(503, "ERROR_UNAVAILABLE", "the database is unavailable")


@router.get(
    "/metrics",
    tags=["Service"],
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}, **error_responses()},
    dependencies=authenticated,
    summary="Prometheus metrics in the text exposition format",
)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
