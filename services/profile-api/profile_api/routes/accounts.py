"""Admin API (contract §2): create accounts, issue, list and revoke API keys.

``GET /v1/accounts/{id}/api-keys`` lists an account's keys (id, prefix, creation and
revocation times; never the key or its hash) and
``DELETE /v1/accounts/{id}/api-keys/{key_id}`` revokes one: from then on it is a 401.

Guarded by the admin bearer token, not by an API key; absent entirely (404) when no
admin token is configured.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from aiohttp import web
from callbacks.models.profiles import refuse_control_characters
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from profile_api.auth import hash_api_key, new_api_key, require_admin
from profile_api.keys import POOL
from profile_api.openapi import ADMIN_SECURITY, json_body, path_id, problems, ref
from profile_api.problems import Problem, pydantic_errors, read_json_object, validation_problem

KEY_PREFIX_SHOWN = 8  # characters of a key kept in clear to tell keys apart


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)

    @field_validator("name")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        # The name goes into the Subject of report emails.
        return refuse_control_characters(value)


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


class ApiKeyInfo(BaseModel):
    id: str
    prefix: str = Field(description="The first characters of the key, to tell keys apart")
    created_at: datetime
    revoked_at: datetime | None


class ApiKeyList(BaseModel):
    items: list[ApiKeyInfo]


def _uuid_or_404(request: web.Request, name: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info[name])
    except ValueError:
        raise Problem(404, f"no {what} with this id") from None


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
    account = _uuid_or_404(request, "id", "account")
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


async def list_api_keys(request: web.Request) -> web.Response:
    require_admin(request)
    account = _uuid_or_404(request, "id", "account")
    async with request.app[POOL].acquire() as conn:
        if await conn.fetchval("SELECT 1 FROM accounts WHERE id = $1", account) is None:
            raise Problem(404, "no account with this id")
        rows = await conn.fetch(
            """SELECT id, prefix, created_at, revoked_at FROM api_keys
               WHERE account_id = $1 ORDER BY created_at, id""",
            account,
        )
    listed = ApiKeyList(items=[ApiKeyInfo(**{**dict(row), "id": str(row["id"])}) for row in rows])
    return web.json_response(listed.model_dump(mode="json"))


async def revoke_api_key(request: web.Request) -> web.Response:
    """Revoke one key; revoking a revoked key again changes nothing (still 204)."""
    require_admin(request)
    account = _uuid_or_404(request, "id", "account")
    key_id = _uuid_or_404(request, "key_id", "API key")
    found = await request.app[POOL].fetchval(
        """UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
           WHERE id = $1 AND account_id = $2 RETURNING id""",
        key_id,
        account,
    )
    if found is None:
        raise Problem(404, "no API key with this id")
    return web.Response(status=204)


def register(app: web.Application) -> None:
    app.router.add_post("/v1/accounts", create_account)
    app.router.add_post("/v1/accounts/{id}/api-keys", create_api_key)
    app.router.add_get("/v1/accounts/{id}/api-keys", list_api_keys)
    app.router.add_delete("/v1/accounts/{id}/api-keys/{key_id}", revoke_api_key)


OPENAPI_MODELS: tuple[type[BaseModel], ...] = (
    AccountCreate,
    AccountCreated,
    ApiKeyCreated,
    ApiKeyInfo,
    ApiKeyList,
)
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
        },
        "get": {
            "summary": "List an account's API keys: ids and times, never the keys (admin)",
            "security": ADMIN_SECURITY,
            "parameters": [path_id(description="Account id")],
            "responses": {"200": json_body(ref(ApiKeyList), "The keys"), **problems(404)},
        },
    },
    "/v1/accounts/{id}/api-keys/{key_id}": {
        "delete": {
            "summary": "Revoke an API key; it is refused (401) from then on (admin)",
            "security": ADMIN_SECURITY,
            "parameters": [
                path_id(description="Account id"),
                path_id("key_id", description="API key id"),
            ],
            "responses": {"204": {"description": "Revoked"}, **problems(404)},
        }
    },
}
