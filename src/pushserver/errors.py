"""The service's error tree: each error carries its HTTP status and envelope code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Violation:
    field_name: str
    hint: str
    invalid_value: Any = None
    hide_value: bool = False


class PushServerError(Exception):
    """Root of every error the API renders into the error envelope."""

    status_code = 500
    code = "ERROR_GENERIC"

    def __init__(self, message: str, *, violations: list[Violation] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.violations = violations or []
        self.headers: dict[str, str] = {}


class ClientError(PushServerError):
    """The client sent something the server will not act on."""

    status_code = 400
    code = "ERROR_REQUEST"


class RequestInvalid(ClientError):
    pass


class Unauthorized(ClientError):
    status_code = 401
    code = "ERROR_UNAUTHORIZED"


class Forbidden(ClientError):
    status_code = 403
    code = "ERROR_FORBIDDEN"


class NotFound(ClientError):
    status_code = 404
    code = "ERROR_NOT_FOUND"


class Conflict(ClientError):
    status_code = 409
    code = "ERROR_CONFLICT"


class PayloadTooLarge(ClientError):
    status_code = 413
    code = "ERROR_PAYLOAD_TOO_LARGE"


class RateLimited(ClientError):
    status_code = 429
    code = "ERROR_RATE_LIMITED"

    def __init__(self, message: str, *, retry_after_s: int) -> None:
        super().__init__(message)
        self.headers["Retry-After"] = str(retry_after_s)


class UpstreamError(PushServerError):
    """A service the server depends on failed."""


class PowerAuthUnavailable(UpstreamError):
    status_code = 502
    code = "ERROR_PA_SERVER_COMM"


class Unavailable(UpstreamError):
    status_code = 503
    code = "ERROR_UNAVAILABLE"
