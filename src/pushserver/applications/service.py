"""Creating applications and keeping their provider credentials, sealed at rest."""

from __future__ import annotations

import logging

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.applications import credentials, repository
from pushserver.applications.schemas import (
    AndroidUpdateRequest,
    ApplicationDetail,
    ApplicationSummary,
    HuaweiUpdateRequest,
    IosUpdateRequest,
)
from pushserver.db.models import PushCredential
from pushserver.db.types import utcnow
from pushserver.errors import Conflict, NotFound
from pushserver.security.secretbox import SecretBox

log = logging.getLogger(__name__)


def sealing_context(column: str, app_id: int) -> str:
    """Binds a sealed secret to its column and application, so it cannot be moved elsewhere."""
    return f"push_credential.{column}:{app_id}"


def summary(row: PushCredential) -> ApplicationSummary:
    return ApplicationSummary(
        app_id=row.app_id,
        ios=row.ios_private_key is not None,
        android=row.android_private_key is not None,
        huawei=row.huawei_client_secret is not None,
    )


async def list_applications(session: AsyncSession) -> list[ApplicationSummary]:
    return [summary(row) for row in await repository.list_all(session)]


async def create(session: AsyncSession, app_id: int) -> None:
    if await repository.exists(session, app_id):
        raise Conflict(f"application {app_id} already exists")
    session.add(PushCredential(app_id=app_id))
    try:
        await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"application {app_id} already exists") from exc
    log.info("application created app_id=%s", app_id)


async def require(
    session: AsyncSession, app_id: int, *, for_update: bool = False
) -> PushCredential:
    row = await repository.get(session, app_id, for_update=for_update)
    if row is None:
        raise NotFound(f"application {app_id} does not exist")
    return row


async def detail(
    session: AsyncSession, app_id: int, *, ios: bool, android: bool, huawei: bool
) -> ApplicationDetail:
    row = await require(session, app_id)
    result = ApplicationDetail(application=summary(row), app_id=row.app_id)
    if ios:
        result.ios_bundle = row.ios_bundle
        result.ios_key_id = row.ios_key_id
        result.ios_team_id = row.ios_team_id
        result.ios_environment = row.ios_environment
    if android:
        result.android_project_id = row.android_project_id
    if huawei:
        result.huawei_project_id = row.huawei_project_id
        result.huawei_client_id = row.huawei_client_id
    return result


async def update_ios(session: AsyncSession, box: SecretBox, request: IosUpdateRequest) -> None:
    p8 = credentials.check_apns_key(request.private_key_base64)
    row = await require(session, request.app_id, for_update=True)
    row.ios_bundle = request.bundle
    row.ios_key_id = request.key_id
    row.ios_team_id = request.team_id
    row.ios_environment = request.environment
    row.ios_private_key = box.seal(p8, sealing_context("ios_private_key", row.app_id))
    row.timestamp_last_updated = utcnow()
    log.info("credentials updated app_id=%s provider=apns key_id=%s", row.app_id, row.ios_key_id)


async def update_android(
    session: AsyncSession, box: SecretBox, request: AndroidUpdateRequest
) -> None:
    account = credentials.check_service_account(request.private_key_base64)
    row = await require(session, request.app_id, for_update=True)
    row.android_project_id = request.project_id or account.project_id
    row.android_private_key = box.seal(
        account.raw, sealing_context("android_private_key", row.app_id)
    )
    row.timestamp_last_updated = utcnow()
    log.info(
        "credentials updated app_id=%s provider=fcm project_id=%s",
        row.app_id,
        row.android_project_id,
    )


async def update_huawei(
    session: AsyncSession, box: SecretBox, request: HuaweiUpdateRequest
) -> None:
    row = await require(session, request.app_id, for_update=True)
    row.huawei_project_id = request.project_id
    row.huawei_client_id = request.client_id
    row.huawei_client_secret = box.seal(
        request.client_secret.encode(), sealing_context("huawei_client_secret", row.app_id)
    )
    row.timestamp_last_updated = utcnow()
    log.info(
        "credentials updated app_id=%s provider=hms project_id=%s",
        row.app_id,
        row.huawei_project_id,
    )


async def remove_ios(session: AsyncSession, app_id: int) -> None:
    row = await require(session, app_id, for_update=True)
    row.ios_bundle = row.ios_key_id = row.ios_team_id = row.ios_environment = None
    row.ios_private_key = None
    row.timestamp_last_updated = utcnow()
    log.info("credentials removed app_id=%s provider=apns", app_id)


async def remove_android(session: AsyncSession, app_id: int) -> None:
    row = await require(session, app_id, for_update=True)
    row.android_project_id = None
    row.android_private_key = None
    row.timestamp_last_updated = utcnow()
    log.info("credentials removed app_id=%s provider=fcm", app_id)


async def remove_huawei(session: AsyncSession, app_id: int) -> None:
    row = await require(session, app_id, for_update=True)
    row.huawei_project_id = row.huawei_client_id = None
    row.huawei_client_secret = None
    row.timestamp_last_updated = utcnow()
    log.info("credentials removed app_id=%s provider=hms", app_id)
