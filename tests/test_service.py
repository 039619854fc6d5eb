"""Service status, health probes, metrics, the error envelope for unknown routes, and OpenAPI."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute

from pushserver.app import create_app
from pushserver.security.apikeys import Role
from pushserver.settings import Settings
from tests.conftest import auth


@pytest.mark.parametrize("role", list(Role))
async def test_every_role_reads_the_service_status(
    client: httpx.AsyncClient, keys: dict[Role, str], role: Role
) -> None:
    response = await client.get("/push/service/status", headers=auth(keys[role]))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "OK"
    assert set(body["responseObject"]) == {
        "applicationName",
        "applicationDisplayName",
        "applicationEnvironment",
        "version",
        "timestamp",
    }


async def test_status_needs_a_known_key(client: httpx.AsyncClient) -> None:
    for headers in ({}, auth("psk_not-a-key"), {"Authorization": "Basic YWxhZGRpbjpvcGVu"}):
        response = await client.get("/push/service/status", headers=headers)
        assert response.status_code == 401
        assert response.json() == {
            "status": "ERROR",
            "responseObject": {
                "code": "ERROR_UNAUTHORIZED",
                "message": response.json()["responseObject"]["message"],
            },
        }


async def test_health_needs_no_key(client: httpx.AsyncClient) -> None:
    assert (await client.get("/health/live")).json() == {"status": "OK"}
    ready = await client.get("/health/ready")
    assert ready.status_code == 200 and ready.json() == {"status": "OK"}


async def test_metrics_are_prometheus_text_behind_a_key(
    client: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    await client.get("/push/service/status", headers=auth(keys[Role.ADMIN]))
    response = await client.get("/metrics", headers=auth(keys[Role.ADMIN]))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert (
        'pushserver_http_requests_total{method="GET",route="/push/service/status",status="200"}'
        in (response.text)
    )


async def test_unknown_route_and_method_use_the_error_envelope(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    missing = await client.get("/push/nothing-here", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["responseObject"]["code"] == "ERROR_NOT_FOUND"

    wrong_method = await client.get("/push/device/create", headers=admin)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["status"] == "ERROR"


def _api_routes(app: FastAPI) -> list[APIRoute]:
    return [
        route for route in app.routes if isinstance(route, APIRoute) and route.include_in_schema
    ]


async def test_openapi_documents_every_endpoint_with_its_models(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    spec = response.json()
    schemas = spec["components"]["schemas"]
    assert "ErrorResponse" in schemas

    for route in _api_routes(app):
        for method in route.methods:
            operation: dict[str, Any] = spec["paths"][route.path][method.lower()]
            assert operation.get("summary"), (method, route.path)
            assert "200" in operation["responses"], (method, route.path)
            if route.path.startswith("/health/"):
                continue
            # Every authenticated endpoint documents its error envelope.
            for status in ("400", "401", "403", "500"):
                error = operation["responses"][status]["content"]["application/json"]["schema"]
                assert error == {"$ref": "#/components/schemas/ErrorResponse"}, (route.path, status)
            if route.body_field is not None:
                body = operation["requestBody"]["content"]["application/json"]["schema"]
                assert "$ref" in body, (method, route.path)

    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    for path, method in [
        ("/push/device/create", "post"),
        ("/push/device/create/multi", "post"),
        ("/push/device/status/update", "put"),
        ("/push/device/delete", "delete"),
        ("/admin/app/list", "get"),
        ("/admin/app/detail", "post"),
        ("/admin/app/ios/update", "put"),
        ("/admin/app/huawei/remove", "delete"),
        ("/push/service/status", "get"),
    ]:
        assert (path, method) in documented


async def test_openapi_declares_bearer_authentication(client: httpx.AsyncClient) -> None:
    spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert any(scheme.get("scheme") == "bearer" for scheme in schemes.values())
    assert (await client.get("/docs")).status_code == 200


async def test_authentication_comes_before_reading_the_body(
    client: httpx.AsyncClient, keys: dict[Role, str]
) -> None:
    anonymous = await client.post("/admin/app/create", content=b'{"requestObject": {')
    assert anonymous.status_code == 401

    wrong_role = await client.post(
        "/admin/app/create", content=b'{"requestObject": {', headers=auth(keys[Role.SENDER])
    )
    assert wrong_role.status_code == 403
    assert wrong_role.json()["responseObject"]["code"] == "ERROR_FORBIDDEN"


async def test_disabled_authentication_admits_anyone_and_warns(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING")
    open_app = create_app(settings.model_copy(update={"auth_disabled": True}))
    async with open_app.router.lifespan_context(open_app):
        transport = httpx.ASGITransport(app=open_app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as anonymous:
            response = await anonymous.post(
                "/admin/app/create", json={"requestObject": {"appId": 7}}
            )
    assert response.status_code == 200
    assert any("authentication is DISABLED" in record.getMessage() for record in caplog.records)
