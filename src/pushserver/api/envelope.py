"""Request and response envelopes of the REST contract."""

from __future__ import annotations

from functools import cache
from typing import Any, Generic, Literal, TypeVar

from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

T = TypeVar("T")


class ApiModel(BaseModel):
    """Base of every API payload: camelCase on the wire, unknown request fields ignored, and a
    null where a field has a default taken as the default (clients that write every field of
    their own classes send ``"mode": null`` for a mode they never set)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    @model_validator(mode="before")
    @classmethod
    def _null_means_default(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        defaulted = _defaulted_keys(cls)
        if not any(value is None and key in defaulted for key, value in data.items()):
            return data
        return {k: v for k, v in data.items() if v is not None or k not in defaulted}


@cache
def _defaulted_keys(model: type[BaseModel]) -> frozenset[str]:
    """The names and aliases of a model's fields that have a default."""
    return frozenset(
        key
        for name, field in model.model_fields.items()
        if not field.is_required()
        for key in (name, field.alias or name)
    )


class RequestEnvelope(BaseModel, Generic[T]):
    model_config = ConfigDict(extra="ignore")

    requestObject: T


class OkResponse(BaseModel):
    status: Literal["OK"] = "OK"


class ObjectResponse(BaseModel, Generic[T]):
    status: Literal["OK"] = "OK"
    responseObject: T


class PagedResponse(ObjectResponse[T], Generic[T]):
    page: int
    size: int


class ViolationModel(BaseModel):
    fieldName: str
    invalidValue: Any = None
    hint: str


class ErrorObject(BaseModel):
    code: str = Field(examples=["ERROR_REQUEST"])
    message: str
    violations: list[ViolationModel] | None = None


class ErrorResponse(BaseModel):
    status: Literal["ERROR"] = "ERROR"
    responseObject: ErrorObject


def ok(payload: BaseModel | None = None, **extra: Any) -> JSONResponse:
    """Render a success envelope, leaving out null fields."""
    content: dict[str, Any] = {"status": "OK"}
    if payload is not None:
        content["responseObject"] = payload.model_dump(
            mode="json", by_alias=True, exclude_none=True
        )
    content.update(extra)
    return JSONResponse(content)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "Malformed JSON, missing or invalid fields (ERROR_REQUEST, with violations)",
        401: "Missing or unknown API key (ERROR_UNAUTHORIZED)",
        403: "The key's role does not allow this endpoint (ERROR_FORBIDDEN)",
        413: "Request body or resulting push payload over its limit (ERROR_PAYLOAD_TOO_LARGE)",
        429: "The API key is over the configured rate (ERROR_RATE_LIMITED, with Retry-After)",
        500: "A bug in the server (ERROR_GENERIC)",
        503: "Database unavailable or shutting down (ERROR_UNAVAILABLE)",
    }.items()
}


def error_responses(*extra: int) -> dict[int | str, dict[str, Any]]:
    """The error models of an endpoint: the common ones plus ``extra`` statuses."""
    descriptions = {
        404: "Unknown application, campaign or message (ERROR_NOT_FOUND)",
        409: "Conflicts with the current state (ERROR_CONFLICT)",
        502: "PowerAuth Server could not be reached or answered an error (ERROR_PA_SERVER_COMM)",
    }
    responses = dict(ERROR_RESPONSES)
    for status in extra:
        responses[status] = {"model": ErrorResponse, "description": descriptions[status]}
    return responses
