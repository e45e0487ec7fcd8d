"""Admin API (contract §2): create accounts and issue API keys.

Guarded by the admin bearer token, not by an API key; absent entirely (404) when no
admin token is configured.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from profile_api.auth import hash_api_key, new_api_key, require_admin
from profile_api.keys import POOL
from profile_api.openapi import ADMIN_SECURITY, json_body, path_id, problems, ref
from profile_api.problems import Problem, pydantic_errors, read_json_object, validation_problem

KEY_PREFIX_SHOWN = 8  # characters of a key kept in clear to tell keys apart


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)


class AccountCreated(BaseModel):
    id: str
    name: str
    api_key: str = Field(description="Shown once; only its hash is stored")


class ApiKeyCreated(BaseModel):
    id: str
    account_id: str
    api_key: str = Field(description="Shown once; only its hash is stored")
    prefix: str
    created_at: datetime


async def _issue_key(conn: Any, account: uuid.UUID) -> tuple[uuid.UUID, str, datetime]:
    key = new_api_key()
    key_id = uuid.uuid4()
    created_at: datetime = await conn.fetchval(
        """INSERT INTO api_keys (id, account_id, key_hash, prefix)
           VALUES ($1, $2, $3, $4) RETURNING created_at""",
        key_id,
        account,
        hash_api_key(key),
        key[:KEY_PREFIX_SHOWN],
    )
    return key_id, key, created_at


async def create_account(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        body = AccountCreate.model_validate(await read_json_object(request))
    except ValidationError as exc:
        raise validation_problem(pydantic_errors(exc)) from exc
    account = uuid.uuid4()
    async with request.app[POOL].acquire() as conn, conn.transaction():
        await conn.execute("INSERT INTO accounts (id, name) VALUES ($1, $2)", account, body.name)
        _, key, _ = await _issue_key(conn, account)
    created = AccountCreated(id=str(account), name=body.name, api_key=key)
    return web.json_response(created.model_dump(), status=201)


async def create_api_key(request: web.Request) -> web.Response:
    require_admin(request)
    try:
        account = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, "no account with this id") from None
    async with request.app[POOL].acquire() as conn, conn.transaction():
        exists = await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1 FOR SHARE", account)
        if exists is None:
            raise Problem(404, "no account with this id")
        key_id, key, created_at = await _issue_key(conn, account)
    issued = ApiKeyCreated(
        id=str(key_id),
        account_id=str(account),
        api_key=key,
        prefix=key[:KEY_PREFIX_SHOWN],
        created_at=created_at,
    )
    return web.json_response(issued.model_dump(mode="json"), status=201)


def register(app: web.Application) -> None:
    app.router.add_post("/v1/accounts", create_account)
    app.router.add_post("/v1/accounts/{id}/api-keys", create_api_key)


OPENAPI_MODELS: tuple[type[BaseModel], ...] = (AccountCreate, AccountCreated, ApiKeyCreated)
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/accounts": {
        "post": {
            "summary": "Create an account and its first API key (admin)",
            "security": ADMIN_SECURITY,
            "requestBody": {"required": True, **json_body(ref(AccountCreate))},
            "responses": {
                "201": json_body(ref(AccountCreated), "Created"),
                **problems(400, 404, 422),
            },
        }
    },
    "/v1/accounts/{id}/api-keys": {
        "post": {
            "summary": "Issue another API key for an account (admin)",
            "security": ADMIN_SECURITY,
            "parameters": [path_id(description="Account id")],
            "responses": {
                "201": json_body(ref(ApiKeyCreated), "Issued"),
                **problems(404),
            },
        }
    },
}
