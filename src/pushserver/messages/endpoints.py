"""``/push/message/*``: single and batch sends, and one message's delivery record."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from pushserver.api.auth import authenticated
from pushserver.api.context import AppContext, get_context
from pushserver.api.envelope import ObjectResponse, RequestEnvelope, error_responses, ok
from pushserver.messages import service
from pushserver.messages.schemas import (
    BatchSendRequest,
    MessageDetail,
    Mode,
    SendRequest,
    SendResult,
)

router = APIRouter(prefix="/push/message", tags=["Messages"], dependencies=authenticated)
Context = Annotated[AppContext, Depends(get_context)]


def _sending(context: AppContext) -> service.Sending:
    return service.Sending(context.settings, context.database, context.registry)


def _after_queueing(context: AppContext, mode: Mode) -> None:
    if mode is Mode.ASYNCHRONOUS and context.worker is not None:
        context.worker.wake()


@router.post(
    "/send",
    response_model=ObjectResponse[SendResult],
    responses=error_responses(404),
    summary="Send one message to a user's devices (or one activation's)",
)
async def send_message(envelope: RequestEnvelope[SendRequest], context: Context) -> JSONResponse:
    request = envelope.requestObject
    result = await service.send(_sending(context), request.app_id, [request.message], request.mode)
    _after_queueing(context, request.mode)
    return ok(result)


@router.post(
    "/batch/send",
    response_model=ObjectResponse[SendResult],
    responses=error_responses(404),
    summary="Send several messages; the counts are summed over the batch",
)
async def send_batch(envelope: RequestEnvelope[BatchSendRequest], context: Context) -> JSONResponse:
    request = envelope.requestObject
    result = await service.send(
        _sending(context), request.app_id, request.batch, request.mode, batch=True
    )
    _after_queueing(context, request.mode)
    return ok(result)


@router.get(
    "/{message_id}/detail",
    response_model=ObjectResponse[MessageDetail],
    responses=error_responses(404),
    summary="One message's status, attempts, last provider error and timestamps",
)
async def message_detail(
    message_id: Annotated[int, Path(ge=1, le=2**63 - 1)], context: Context
) -> JSONResponse:
    return ok(await service.detail(context.database, message_id))
