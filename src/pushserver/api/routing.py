"""Registers one endpoint under several HTTP methods, each with its own OpenAPI operation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import APIRouter


def route(
    router: APIRouter, methods: Sequence[str], path: str, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        for method in methods:
            router.add_api_route(path, endpoint, methods=[method], **options)
        return endpoint

    return register
