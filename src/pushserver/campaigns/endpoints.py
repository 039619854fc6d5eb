"""``/push/campaign/*``: create, fill with users, test, send live, follow, delete."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import JSONResponse

from pushserver.api.auth import authenticated
from pushserver.api.context import AppContext, get_context
from pushserver.api.envelope import (
    ObjectResponse,
    OkResponse,
    PagedResponse,
    RequestEnvelope,
    error_responses,
    ok,
)
from pushserver.api.routing import route
from pushserver.campaigns import service
from pushserver.campaigns.schemas import (
    Campaign,
    CampaignCreated,
    CampaignDetail,
    CampaignUsers,
    CreateCampaignRequest,
    Deleted,
    TestSendRequest,
    UserIds,
)
from pushserver.messages import service as messages
from pushserver.messages.schemas import Mode

router = APIRouter(prefix="/push/campaign", tags=["Campaigns"], dependencies=authenticated)
Context = Annotated[AppContext, Depends(get_context)]
CampaignId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@router.post(
    "/create",
    response_model=ObjectResponse[CampaignCreated],
    responses=error_responses(404),
    summary="Create a campaign for an application with its message",
)
async def create_campaign(
    envelope: RequestEnvelope[CreateCampaignRequest], context: Context
) -> JSONResponse:
    async with context.database.transaction() as session:
        campaign_id = await service.create(session, envelope.requestObject, context.settings)
    return ok(CampaignCreated(id=campaign_id))


@router.get(
    "/{campaign_id}/detail",
    response_model=ObjectResponse[CampaignDetail],
    responses=error_responses(404),
    summary="A campaign with its progress over its devices",
)
async def campaign_detail(campaign_id: CampaignId, context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        return ok(await service.detail(session, campaign_id))


@router.get(
    "/list",
    response_model=ObjectResponse[list[Campaign]],
    responses=error_responses(),
    summary="Campaigns not yet sent, or all with all=true",
)
async def list_campaigns(
    context: Context, all: Annotated[bool, Query(description="Include sent campaigns")] = False
) -> JSONResponse:
    async with context.database.transaction() as session:
        campaigns = await service.list_campaigns(session, include_sent=all)
    return JSONResponse(
        {
            "status": "OK",
            "responseObject": [
                c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in campaigns
            ],
        }
    )


@route(
    router,
    ["POST", "PUT"],
    "/{campaign_id}/user/add",
    response_model=OkResponse,
    responses=error_responses(404, 409),
    summary="Add users to a campaign not yet sent; users already in it are ignored",
)
async def add_users(
    campaign_id: CampaignId, envelope: RequestEnvelope[UserIds], context: Context
) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.add_users(session, campaign_id, envelope.requestObject)
    return ok()


@router.get(
    "/{campaign_id}/user/list",
    response_model=PagedResponse[CampaignUsers],
    responses=error_responses(404),
    summary="The campaign's users, a page at a time",
)
async def list_users(
    campaign_id: CampaignId,
    context: Context,
    page: Annotated[int, Query(ge=0)] = 0,
    size: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> JSONResponse:
    async with context.database.transaction() as session:
        users = await service.list_users(session, campaign_id, page, size)
    return ok(CampaignUsers(campaign_id=campaign_id, users=users), page=page, size=size)


@route(
    router,
    ["POST", "DELETE"],
    "/{campaign_id}/user/delete",
    response_model=OkResponse,
    responses=error_responses(404, 409),
    summary="Remove users from a campaign not yet sent",
)
async def delete_users(
    campaign_id: CampaignId, envelope: RequestEnvelope[UserIds], context: Context
) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.delete_users(session, campaign_id, envelope.requestObject)
    return ok()


@router.post(
    "/send/test/{campaign_id}",
    response_model=OkResponse,
    responses=error_responses(404),
    summary="Send the campaign's message to one user, synchronously",
)
async def send_test(
    campaign_id: CampaignId, envelope: RequestEnvelope[TestSendRequest], context: Context
) -> JSONResponse:
    async with context.database.transaction() as session:
        app_id, message = await service.test_message(
            session, campaign_id, envelope.requestObject.user_id
        )
    sending = messages.Sending(context.settings, context.database, context.registry)
    await messages.send(sending, app_id, [message], Mode.SYNCHRONOUS)
    return ok()


@router.post(
    "/send/live/{campaign_id}",
    response_model=OkResponse,
    responses=error_responses(404, 409),
    summary="Send the campaign to all its users' devices; workers deliver it",
)
async def send_live(campaign_id: CampaignId, context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.start_live(session, campaign_id)
    if context.worker is not None:
        context.worker.wake()
    return ok()


@route(
    router,
    ["POST", "DELETE"],
    "/{campaign_id}/delete",
    response_model=ObjectResponse[Deleted],
    responses=error_responses(404),
    summary="Delete a campaign with its users and devices",
)
async def delete_campaign(campaign_id: CampaignId, context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.delete(session, campaign_id)
    return ok(Deleted())
