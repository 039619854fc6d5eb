"""Wire models of the application administration endpoints."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, StringConstraints

from pushserver.api.envelope import ApiModel


def _not_boolean(value: Any) -> Any:
    # Lax integer parsing would take `true` for application 1 and act on the wrong app.
    if isinstance(value, bool):
        raise ValueError("must be a number, not true or false")
    return value


# The validator comes after Field so that OpenAPI still shows the bounds as JSON Schema keywords.
AppId = Annotated[
    int,
    Field(gt=0, le=2**63 - 1, description="Numeric application id"),
    BeforeValidator(_not_boolean),
]
Text255 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
Environment = Literal["development", "production"]


class AppIdRequest(ApiModel):
    app_id: AppId


class AppDetailRequest(ApiModel):
    app_id: AppId
    include_ios: bool = False
    include_android: bool = False
    include_huawei: bool = False


class IosUpdateRequest(ApiModel):
    app_id: AppId
    bundle: Text255 = Field(description="The app's bundle id, sent as the APNs topic")
    key_id: Text255 = Field(description="Key ID of the APNs auth key")
    team_id: Text255 = Field(description="Apple developer team id")
    environment: Environment | None = Field(
        default=None,
        description="APNs host for every device of the app; when absent, each device's own",
    )
    private_key_base64: str = Field(description="Base64 of the .p8 file (EC P-256 private key)")


class AndroidUpdateRequest(ApiModel):
    app_id: AppId
    project_id: Text255 | None = Field(
        default=None, description="Firebase project id; defaults to the service account's"
    )
    private_key_base64: str = Field(description="Base64 of the Firebase service-account JSON")


class HuaweiUpdateRequest(ApiModel):
    app_id: AppId
    project_id: Text255
    client_id: Text255
    client_secret: Annotated[str, StringConstraints(min_length=1, max_length=1024)]


class ApplicationSummary(ApiModel):
    app_id: int
    ios: bool
    android: bool
    huawei: bool


class ApplicationList(ApiModel):
    application_list: list[ApplicationSummary]


class ApplicationCreated(ApiModel):
    app_id: int


class ApplicationDetail(ApiModel):
    application: ApplicationSummary
    app_id: int
    ios_bundle: str | None = None
    ios_key_id: str | None = None
    ios_team_id: str | None = None
    ios_environment: str | None = None
    android_project_id: str | None = None
    huawei_project_id: str | None = None
    huawei_client_id: str | None = None
