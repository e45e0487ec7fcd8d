"""The OpenAPI 3.1 document of ``/openapi.json``, assembled from the route modules.

Each module under ``profile_api.routes`` describes its own paths in ``OPENAPI_PATHS``
and lists the pydantic models they reference in ``OPENAPI_MODELS``; this module only
merges them, adds the problem body, the security schemes and the ops endpoints, and
turns models into JSON Schema. Keeping the description next to the handlers keeps it
honest when a route changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from profile_api.problems import PROBLEM_JSON, ProblemBody

SCHEMAS = "#/components/schemas/"
API_KEY = "apiKey"
ADMIN = "adminToken"
ADMIN_SECURITY: list[dict[str, list[str]]] = [{ADMIN: []}]
NO_SECURITY: list[dict[str, list[str]]] = []

_REASONS = {
    400: "Malformed request (the body is not JSON)",
    401: "Missing or wrong credentials",
    404: "Not found (or owned by another account)",
    405: "Method not allowed",
    422: "Validation failed; `errors` names each field",
    500: "Internal error",
}


def ref(model: type[BaseModel] | str) -> dict[str, str]:
    name = model if isinstance(model, str) else model.__name__
    return {"$ref": f"{SCHEMAS}{name}"}


def json_body(schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    """A request body or a response with one JSON media type."""
    out: dict[str, Any] = {"content": {"application/json": {"schema": schema}}}
    if description:
        out["description"] = description
    return out


def problems(*statuses: int) -> dict[str, Any]:
    """Problem responses for ``statuses`` (401 and 500 are added: every /v1 call has them)."""
    wanted = sorted({*statuses, 401, 500})
    return {
        str(status): {
            "description": _REASONS.get(status, "Error"),
            "content": {PROBLEM_JSON: {"schema": ref(ProblemBody)}},
        }
        for status in wanted
    }


def path_id(name: str = "id", description: str = "Callback profile id") -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "format": "uuid"},
    }


def query_param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """An optional query string parameter."""
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _model_schemas(models: Iterable[type[BaseModel]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=SCHEMAS + "{model}")
        out.update(schema.pop("$defs", {}))
        out[model.__name__] = schema
    return out


def _ops_paths() -> dict[str, Any]:
    def op(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
        return {"get": {"summary": summary, "security": NO_SECURITY, "responses": responses}}

    readiness = {
        "type": "object",
        "properties": {
            "status": {"type": "string"},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
    }
    return {
        "/healthz": op("Process alive", {"200": json_body({"type": "object"}, "Alive")}),
        "/readyz": op(
            "Database and broker reachable",
            {"200": json_body(readiness, "Ready"), "503": json_body(readiness, "Not ready")},
        ),
        "/metrics": op(
            "Prometheus metrics",
            {
                "200": {
                    "description": "Metrics",
                    "content": {"text/plain": {"schema": {"type": "string"}}},
                }
            },
        ),
        "/openapi.json": op("This document", {"200": json_body({"type": "object"}, "OpenAPI")}),
    }


def build_document(modules: Sequence[ModuleType], version: str) -> dict[str, Any]:
    paths: dict[str, Any] = _ops_paths()
    models: list[type[BaseModel]] = [ProblemBody]
    extra_schemas: dict[str, Any] = {}
    for module in modules:
        for path, operations in getattr(module, "OPENAPI_PATHS", {}).items():
            paths.setdefault(path, {}).update(operations)
        models.extend(getattr(module, "OPENAPI_MODELS", ()))
        extra_schemas.update(getattr(module, "OPENAPI_SCHEMAS", {}))
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Callback profiles API",
            "version": version,
            "description": "Manage callback profiles: where and how status callbacks of "
            "SMS, email, WhatsApp and chatbot events are delivered.",
        },
        "paths": paths,
        "components": {
            "schemas": {**_model_schemas(models), **extra_schemas},
            "securitySchemes": {
                API_KEY: {"type": "apiKey", "in": "header", "name": "api-key"},
                ADMIN: {"type": "http", "scheme": "bearer"},
            },
        },
        "security": [{API_KEY: []}],
    }
