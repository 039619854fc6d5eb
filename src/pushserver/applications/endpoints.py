"""``/admin/app/*``: applications and their provider credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from pushserver.api.auth import authenticated
from pushserver.api.context import AppContext, get_context
from pushserver.api.envelope import ObjectResponse, OkResponse, RequestEnvelope, error_responses, ok
from pushserver.api.routing import route
from pushserver.applications import service
from pushserver.applications.schemas import (
    AndroidUpdateRequest,
    AppDetailRequest,
    AppIdRequest,
    ApplicationCreated,
    ApplicationDetail,
    ApplicationList,
    HuaweiUpdateRequest,
    IosUpdateRequest,
)

router = APIRouter(prefix="/admin/app", tags=["Applications"], dependencies=authenticated)
Context = Annotated[AppContext, Depends(get_context)]


@router.get(
    "/list",
    response_model=ObjectResponse[ApplicationList],
    responses=error_responses(),
    summary="List applications and which providers each has credentials for",
)
async def list_applications(context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        applications = await service.list_applications(session)
    return ok(ApplicationList(application_list=applications))


@router.post(
    "/detail",
    response_model=ObjectResponse[ApplicationDetail],
    responses=error_responses(404),
    summary="One application's credential settings, without any secret",
)
async def application_detail(
    envelope: RequestEnvelope[AppDetailRequest], context: Context
) -> JSONResponse:
    request = envelope.requestObject
    async with context.database.transaction() as session:
        detail = await service.detail(
            session,
            request.app_id,
            ios=request.include_ios,
            android=request.include_android,
            huawei=request.include_huawei,
        )
    return ok(detail)


@router.post(
    "/create",
    response_model=ObjectResponse[ApplicationCreated],
    responses=error_responses(409),
    summary="Create an application",
)
async def create_application(
    envelope: RequestEnvelope[AppIdRequest], context: Context
) -> JSONResponse:
    app_id = envelope.requestObject.app_id
    async with context.database.transaction() as session:
        await service.create(session, app_id)
    return ok(ApplicationCreated(app_id=app_id))


_credential_options = {
    "response_model": OkResponse,
    "responses": error_responses(404),
}


@route(
    router,
    ["POST", "PUT"],
    "/ios/update",
    summary="Set the APNs key of an application",
    **_credential_options,
)
async def update_ios(envelope: RequestEnvelope[IosUpdateRequest], context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.update_ios(session, context.secrets, envelope.requestObject)
    return ok()


@route(
    router,
    ["POST", "DELETE"],
    "/ios/remove",
    summary="Remove the APNs key of an application",
    **_credential_options,
)
async def remove_ios(envelope: RequestEnvelope[AppIdRequest], context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.remove_ios(session, envelope.requestObject.app_id)
    return ok()


@route(
    router,
    ["POST", "PUT"],
    "/android/update",
    summary="Set the Firebase service account of an application",
    **_credential_options,
)
async def update_android(
    envelope: RequestEnvelope[AndroidUpdateRequest], context: Context
) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.update_android(session, context.secrets, envelope.requestObject)
    return ok()


@route(
    router,
    ["POST", "DELETE"],
    "/android/remove",
    summary="Remove the Firebase service account of an application",
    **_credential_options,
)
async def remove_android(envelope: RequestEnvelope[AppIdRequest], context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.remove_android(session, envelope.requestObject.app_id)
    return ok()


@route(
    router,
    ["POST", "PUT"],
    "/huawei/update",
    summary="Set the Huawei Push Kit client credentials of an application",
    **_credential_options,
)
async def update_huawei(
    envelope: RequestEnvelope[HuaweiUpdateRequest], context: Context
) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.update_huawei(session, context.secrets, envelope.requestObject)
    return ok()


@route(
    router,
    ["POST", "DELETE"],
    "/huawei/remove",
    summary="Remove the Huawei Push Kit credentials of an application",
    **_credential_options,
)
async def remove_huawei(envelope: RequestEnvelope[AppIdRequest], context: Context) -> JSONResponse:
    async with context.database.transaction() as session:
        await service.remove_huawei(session, envelope.requestObject.app_id)
    return ok()
