"""Bearer API keys, and the one table that says which roles may call which endpoints.

Authentication runs as middleware, ahead of body parsing, so an unauthenticated or unauthorised
client learns nothing about the body it sent: it gets 401 or 403 whatever that body holds.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Receive, Scope, Send

from pushserver.api.context import AppContext
from pushserver.api.handlers import error_response
from pushserver.errors import Forbidden, PushServerError, Unauthorized
from pushserver.security.apikeys import Principal, Role

PUBLIC_PATHS = ("/health/", "/docs", "/redoc", "/openapi.json")

# First match wins. A rule ending in "/" covers everything below it. Admin may call anything.
POLICY: tuple[tuple[str, frozenset[Role]], ...] = (
    ("/push/device/status/update", frozenset({Role.REGISTRAR, Role.CALLBACK})),
    ("/push/device/", frozenset({Role.REGISTRAR})),
    ("/admin/app/list", frozenset({Role.SENDER})),
    ("/admin/", frozenset()),
    ("/push/message/", frozenset({Role.SENDER})),
    ("/push/campaign/", frozenset({Role.SENDER})),
)
EVERY_ROLE = frozenset(Role)

_DEV_PRINCIPAL = Principal(key_id=None, name="auth disabled", role=Role.ADMIN)


def admitted_roles(path: str) -> frozenset[Role]:
    """The roles that may call ``path``; the service status, metrics and the rest admit all."""
    for rule, roles in POLICY:
        if path == rule or (rule.endswith("/") and path.startswith(rule)):
            return roles | {Role.ADMIN}
    return EVERY_ROLE


def is_public(path: str) -> bool:
    return path.startswith(PUBLIC_PATHS)


async def authenticate(context: AppContext, authorization: str | None) -> Principal:
    if context.settings.auth_disabled:
        return _DEV_PRINCIPAL
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("an API key is required: send `Authorization: Bearer <key>`")
    async with context.database.transaction() as session:
        principal = await context.keys.verify(session, key.strip())
    if principal is None:
        raise Unauthorized("the API key is not known")
    return principal


class Authentication:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or is_public(path):
            await self.app(scope, receive, send)
            return

        context: AppContext = scope["app"].state.context
        headers = dict(scope["headers"])
        authorization = headers.get(b"authorization", b"").decode("latin-1") or None
        try:
            principal = await authenticate(context, authorization)
            if principal.role not in admitted_roles(path):
                raise Forbidden(f"the role {principal.role.value} may not call this endpoint")
            if context.rate is not None:
                await context.rate.admit(str(principal.key_id))
        except PushServerError as exc:
            response = error_response(
                exc.status_code, exc.code, exc.message, headers=exc.headers or None
            )
            await response(scope, receive, send)
            return

        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


_bearer = HTTPBearer(auto_error=False, description="An API key made by `pushserver apikey create`")


async def current_principal(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    """The caller the middleware authenticated; declares bearer auth in the OpenAPI document."""
    principal: Principal = request.state.principal
    return principal


authenticated = [Depends(current_principal)]
