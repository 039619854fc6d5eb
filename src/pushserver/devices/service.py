"""Registration upserts, removal, and the activation status cache."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from pushserver.applications import service as applications
from pushserver.db.models import PushDevice
from pushserver.db.types import utcnow
from pushserver.devices import repository
from pushserver.devices.schemas import (
    ActivationStatus,
    CreateDeviceMultiRequest,
    CreateDeviceRequest,
    Platform,
    StatusUpdateRequest,
)
from pushserver.errors import RequestInvalid, Violation
from pushserver.powerauth.client import ActivationState, PowerAuthClient
from pushserver.security.secretbox import SecretBox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Activation:
    activation_id: str
    user_id: str
    status: ActivationStatus


def key_context(column: str, activation_id: str) -> str:
    return f"push_device.{column}:{activation_id}"


def _activation_ids(request: CreateDeviceRequest | CreateDeviceMultiRequest) -> list[str]:
    if isinstance(request, CreateDeviceMultiRequest):
        return list(dict.fromkeys(request.activation_ids))
    return [request.activation_id]


async def resolve_activations(
    request: CreateDeviceRequest | CreateDeviceMultiRequest, powerauth: PowerAuthClient | None
) -> list[Activation]:
    """Each activation's user and status: as the request states both, else as PowerAuth says.

    Called before the registration's transaction, so no row stays locked while PowerAuth Server
    is asked.
    """
    ids = _activation_ids(request)
    user_id, status = request.user_id, request.activation_status
    if powerauth is None or (user_id is not None and status is not None):
        return [resolve_activation(a, user_id, status) for a in ids]
    states = await powerauth.activations(ids)
    return [_known_activation(state, request) for state in states]


def _known_activation(
    state: ActivationState, request: CreateDeviceRequest | CreateDeviceMultiRequest
) -> Activation:
    if state.status is ActivationStatus.REMOVED or state.user_id is None:
        if isinstance(request, CreateDeviceMultiRequest):
            position = request.activation_ids.index(state.activation_id)
            field_name = f"requestObject.activationIds[{position}]"
        else:
            field_name = "requestObject.activationId"
        raise RequestInvalid(
            f"activation {state.activation_id} is REMOVED at PowerAuth Server "
            "and cannot register a device",
            violations=[
                Violation(field_name, "is REMOVED at PowerAuth Server", state.activation_id)
            ],
        )
    return Activation(state.activation_id, state.user_id, state.status)


def resolve_activation(
    activation_id: str, user_id: str | None, status: ActivationStatus | None
) -> Activation:
    """The activation's user and status, as the request states them."""
    if user_id is None or status is None:
        missing = [
            Violation(f"requestObject.{name}", "is required when no PowerAuth Server is configured")
            for name, value in (("userId", user_id), ("activationStatus", status))
            if value is None
        ]
        raise RequestInvalid("the activation's user and status are required", violations=missing)
    if status is ActivationStatus.REMOVED:
        raise RequestInvalid(
            f"activation {activation_id} is REMOVED and cannot register a device",
            violations=[
                Violation("requestObject.activationStatus", "must not be REMOVED", status.value)
            ],
        )
    return Activation(activation_id, user_id, status)


async def register(
    session: AsyncSession,
    box: SecretBox,
    request: CreateDeviceRequest | CreateDeviceMultiRequest,
    activations: list[Activation],
) -> None:
    """Upsert the token for one activation, or for each of several sharing one phone."""
    await repository.lock_token(session, request.app_id, request.token)
    await applications.require(session, request.app_id)

    ids = [activation.activation_id for activation in activations]
    rows = await repository.matching(session, request.app_id, ids, request.token)

    if isinstance(request, CreateDeviceMultiRequest):
        # One row per activation; other activations keep their rows for the same token.
        by_activation = {row.activation_id: row for row in rows}
        for activation in activations:
            _apply(session, box, by_activation.get(activation.activation_id), request, activation)
    else:
        # The activation's row, else the token's row, becomes the one registration; the token now
        # belongs to this activation alone.
        own = [row for row in rows if row.activation_id == ids[0]]
        target = (own or rows)[0] if rows else None
        for row in rows:
            if row is not target:
                await session.delete(row)
        await session.flush()
        _apply(session, box, target, request, activations[0])

    await session.flush()
    log.info(
        "device registered app_id=%s platform=%s activations=%d token=%s",
        request.app_id,
        request.platform.value,
        len(activations),
        request.token[:8],
    )


def _apply(
    session: AsyncSession,
    box: SecretBox,
    row: PushDevice | None,
    request: CreateDeviceRequest | CreateDeviceMultiRequest,
    activation: Activation,
) -> None:
    if row is None:
        row = PushDevice(app_id=request.app_id, activation_id=activation.activation_id)
        session.add(row)
    elif row.activation_id != activation.activation_id:
        # A token moving to another activation must not keep the old activation's keys.
        row.activation_id = activation.activation_id
        row.encryption_key = row.encryption_key_index = None

    row.push_token = request.token
    row.platform = request.platform.value
    row.environment = request.environment if request.platform is Platform.IOS else None
    row.user_id = activation.user_id
    row.is_active = activation.status is ActivationStatus.ACTIVE
    row.timestamp_created = utcnow()
    if request.encryption_key is not None and request.encryption_key_index is not None:
        row.encryption_key = box.seal_text(
            request.encryption_key.encode(), key_context("encryption_key", activation.activation_id)
        )
        row.encryption_key_index = box.seal_text(
            request.encryption_key_index.encode(),
            key_context("encryption_key_index", activation.activation_id),
        )


async def remove(session: AsyncSession, app_id: int, token: str) -> int:
    await applications.require(session, app_id)
    removed = await repository.delete_token(session, app_id, token)
    log.info("device removed app_id=%s token=%s rows=%d", app_id, token[:8], removed)
    return removed


async def resolve_status(
    request: StatusUpdateRequest, powerauth: PowerAuthClient | None
) -> ActivationStatus:
    """The status the callback states, else the one PowerAuth Server reports."""
    if request.activationStatus is not None:
        return request.activationStatus
    if powerauth is None:
        raise RequestInvalid(
            "activationStatus is required when no PowerAuth Server is configured",
            violations=[
                Violation("activationStatus", "is required when no PowerAuth Server is configured")
            ],
        )
    return (await powerauth.activation(request.activationId)).status


async def update_status(session: AsyncSession, activation_id: str, status: ActivationStatus) -> int:
    active = status is ActivationStatus.ACTIVE
    changed = await repository.set_active(session, activation_id, active)
    log.info(
        "activation status updated activation_id=%s status=%s devices=%d",
        activation_id,
        status.value,
        changed,
    )
    return changed
