"""One place that renders every failure into the error envelope."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from pushserver.errors import PushServerError, Violation

log = logging.getLogger(__name__)

# Request fields whose values are never echoed back, not even when they are invalid.
SECRET_FIELDS = frozenset(
    {"privateKeyBase64", "clientSecret", "encryptionKey", "encryptionKeyIndex"}
)

NOT_JSON = "the body is not valid JSON"

_HTTP_CODES = {
    401: "ERROR_UNAUTHORIZED",
    403: "ERROR_FORBIDDEN",
    404: "ERROR_NOT_FOUND",
    409: "ERROR_CONFLICT",
    413: "ERROR_PAYLOAD_TOO_LARGE",
    503: "ERROR_UNAVAILABLE",
}


def error_response(
    status_code: int,
    code: str,
    message: str,
    violations: Sequence[Violation] = (),
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {"code": code, "message": message}
    if violations:
        body["violations"] = [_render_violation(v) for v in violations]
    return JSONResponse(
        {"status": "ERROR", "responseObject": body}, status_code=status_code, headers=headers
    )


def _render_violation(violation: Violation) -> dict[str, Any]:
    rendered: dict[str, Any] = {"fieldName": violation.field_name}
    if violation.invalid_value is not None and not violation.hide_value:
        rendered["invalidValue"] = violation.invalid_value
    rendered["hint"] = violation.hint
    return rendered


def violations_from(errors: Sequence[Any]) -> list[Violation]:
    violations = []
    for error in errors:
        location = list(error.get("loc", ()))
        if location[:1] == ["body"]:
            # The framework's own prefix; a field of the message may be named "body" too.
            location = location[1:]
        field_name = _field_path(location) or "requestObject"
        kind = error.get("type", "")
        if kind == "json_invalid":
            violations.append(Violation("requestObject", NOT_JSON))
            continue
        hidden = any(part in SECRET_FIELDS for part in location)
        value = None if kind == "missing" else error.get("input")
        if not isinstance(value, str | int | float | bool):
            value = None
        violations.append(Violation(field_name, _hint(error), value, hide_value=hidden))
    return violations


def _field_path(location: Sequence[Any]) -> str:
    path = ""
    for part in location:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _hint(error: dict[str, Any]) -> str:
    if error.get("type") == "missing":
        return "is required"
    message = str(error.get("msg", "is invalid"))
    return message.removeprefix("Value error, ")


async def _on_push_server_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PushServerError)
    if exc.status_code >= 500:
        log.warning("request failed code=%s message=%s", exc.code, exc.message, exc_info=exc)
    return error_response(exc.status_code, exc.code, exc.message, exc.violations, exc.headers)


async def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    violations = violations_from(exc.errors())
    malformed = any(v.hint == NOT_JSON for v in violations)
    message = "malformed JSON" if malformed else "the request is invalid"
    return error_response(400, "ERROR_REQUEST", message, violations)


async def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    code = _HTTP_CODES.get(
        exc.status_code, "ERROR_REQUEST" if exc.status_code < 500 else "ERROR_GENERIC"
    )
    if exc.status_code == 400:
        # The framework could not parse the body at all (nesting too deep, say).
        violation = Violation("requestObject", NOT_JSON)
        return error_response(400, "ERROR_REQUEST", "malformed JSON", [violation])
    message = {404: "no such endpoint", 405: "method not allowed"}.get(
        exc.status_code, str(exc.detail)
    )
    return error_response(exc.status_code, code, message, headers=getattr(exc, "headers", None))


async def _on_unexpected(_request: Request, exc: Exception) -> JSONResponse:
    # The server logs the traceback once the response is out; this line names the request.
    log.error("unhandled error type=%s path=%s", type(exc).__name__, _request.url.path)
    return error_response(500, "ERROR_GENERIC", "internal server error")


def install(app: FastAPI) -> None:
    app.add_exception_handler(PushServerError, _on_push_server_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
