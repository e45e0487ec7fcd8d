"""The channel catalog (contract §3 "Catalog"): channels, events and their variables."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from callbacks.catalog import catalog_document

from profile_api.openapi import json_body, problems


async def list_channels(_request: web.Request) -> web.Response:
    return web.json_response(catalog_document())


def register(app: web.Application) -> None:
    app.router.add_get("/v1/channels", list_channels)


_VARIABLE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "example": {},
    },
    "required": ["name", "description", "example"],
}
_CHANNEL = {
    "type": "object",
    "properties": {
        "channel": {"type": "string"},
        "methods": {"type": "array", "items": {"type": "string"}},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "variables": {"type": "array", "items": _VARIABLE},
                },
                "required": ["name", "variables"],
            },
        },
    },
    "required": ["channel", "methods", "events"],
}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/channels": {
        "get": {
            "summary": "Every channel with its events and each event's variables",
            "responses": {
                "200": json_body({"type": "array", "items": _CHANNEL}, "The catalog"),
                **problems(),
            },
        }
    }
}
