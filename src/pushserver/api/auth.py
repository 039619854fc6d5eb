"""Bearer API keys and the roles that may call each endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from pushserver.api.context import AppContext, get_context
from pushserver.errors import Forbidden, Unauthorized
from pushserver.security.apikeys import Principal, Role

_bearer = HTTPBearer(auto_error=False, description="An API key made by `pushserver apikey create`")

_DEV_PRINCIPAL = Principal(key_id=None, name="auth disabled", role=Role.ADMIN)


def allow(*roles: Role) -> Callable[..., Awaitable[Principal]]:
    """A dependency admitting admin keys and keys of the given roles."""
    admitted = frozenset({Role.ADMIN, *roles})

    async def authorize(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
        context: Annotated[AppContext, Depends(get_context)],
    ) -> Principal:
        if context.settings.auth_disabled:
            return _DEV_PRINCIPAL
        if credentials is None or credentials.scheme.lower() != "bearer":
            raise Unauthorized("an API key is required: send `Authorization: Bearer <key>`")

        async with context.database.transaction() as session:
            principal = await context.keys.verify(session, credentials.credentials)
        if principal is None:
            raise Unauthorized("the API key is not known")
        if principal.role not in admitted:
            raise Forbidden(f"the role {principal.role.value} may not call this endpoint")
        request.state.principal = principal
        return principal

    return authorize
