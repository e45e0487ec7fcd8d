"""Callback profiles (contract §3): create, read, update, delete, list, rotate the secret,
and the ed25519 public key that verifies ``v1a`` signatures (§3b)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, get_args

from aiohttp import web
from callbacks.models.profiles import (
    Channel,
    DisabledReason,
    Method,
    ProfileRecord,
    ProfileSpec,
    SigningScheme,
    masked,
)
from callbacks.signing import generate_secret, public_key
from pydantic import BaseModel, Field

from profile_api import documents
from profile_api.auth import account_id
from profile_api.keys import PROFILE_STORE, SETTINGS
from profile_api.listing import (
    PAGE_PARAMETERS,
    QueryErrors,
    cursor,
    encode_cursor,
    moment,
    one_of,
    page_limit,
    utc_window,
)
from profile_api.openapi import json_body, path_id, problems, query_param, ref
from profile_api.problems import FieldProblem, Problem, read_json_object, validation_problem
from profile_api.store import ListQuery, ProfileQuotaExceeded

NOT_FOUND = "no callback profile with this id"
METHODS: tuple[str, ...] = get_args(Method)
CHANNELS: tuple[str, ...] = get_args(Channel)


class Profile(ProfileSpec):
    """A saved profile as the API shows it: every secret masked as ``****``."""

    id: str
    created_at: datetime
    updated_at: datetime
    disabled_reason: DisabledReason | None = None
    disabled_at: datetime | None = None
    signing_secret: str | None = Field(
        default=None,
        description="Only in the 201 of create and the 200 of rotate-secret: "
        "whsec_ + base64 of the key bytes",
    )


class PublicKey(BaseModel):
    public_key: str = Field(description="whpk_ + base64 of the 32-byte ed25519 public key")
    created_at: datetime
    expires_at: datetime | None = Field(
        default=None, description="Set on the previous key during a rotation (24 h)"
    )


class SigningKey(BaseModel):
    """The keys that verify the profile's ``v1a`` signatures."""

    scheme: SigningScheme = Field(
        description="The profile's signing.scheme; with v1 the key exists but does not sign"
    )
    public_key: str = Field(description="The current key, whpk_…")
    public_keys: list[PublicKey] = Field(
        description="Every key that signs now, current first: two during a rotation"
    )


class ProfilePage(BaseModel):
    items: list[Profile]
    next_cursor: str | None


def _profile_id(request: web.Request) -> uuid.UUID:
    """The id in the path; an id that is not a UUID cannot exist: 404, like any other."""
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, NOT_FOUND) from None


def _now() -> datetime:
    return datetime.now(UTC)


def _found(record: ProfileRecord | None) -> ProfileRecord:
    if record is None:
        raise Problem(404, NOT_FOUND)
    return record


def _plain_http(request: web.Request) -> bool:
    return request.app[SETTINGS].allow_plain_http


async def create_profile(request: web.Request) -> web.Response:
    account = account_id(request)
    body = documents.keep_masked_secrets(documents.writable(await read_json_object(request)), None)
    spec = documents.parse_spec(body, allow_plain_http=_plain_http(request))
    secret = generate_secret()
    record = documents.new_record(
        spec, profile_id=str(uuid.uuid4()), account=account, now=_now(), signing_secret=secret
    )
    limit = request.app[SETTINGS].max_profiles_per_account
    try:
        await request.app[PROFILE_STORE].create(record, max_profiles=limit)
    except ProfileQuotaExceeded as exc:
        raise validation_problem(
            [
                FieldProblem(
                    field="profile",
                    message=f"this account has {exc.limit} profiles, the most it may hold; "
                    "delete one first",
                )
            ]
        ) from exc
    return web.json_response(documents.response_body(record, secret), status=201)


async def get_profile(request: web.Request) -> web.Response:
    record = await request.app[PROFILE_STORE].get(account_id(request), _profile_id(request))
    return web.json_response(documents.response_body(_found(record)))


async def replace_profile(request: web.Request) -> web.Response:
    account, profile_id = account_id(request), _profile_id(request)
    body = documents.writable(await read_json_object(request))

    def change(stored: ProfileRecord) -> ProfileRecord:
        spec = documents.parse_spec(
            documents.keep_masked_secrets(body, stored), allow_plain_http=_plain_http(request)
        )
        return documents.updated_record(stored, spec, _now())

    record = await request.app[PROFILE_STORE].update(account, profile_id, change)
    return web.json_response(documents.response_body(_found(record)))


async def patch_profile(request: web.Request) -> web.Response:
    account, profile_id = account_id(request), _profile_id(request)
    patch = documents.writable(await read_json_object(request))

    def change(stored: ProfileRecord) -> ProfileRecord:
        # Merged over the masked record, so a secret the patch does not send is a mask
        # like one sent as ****: kept, unless the patch moves the profile elsewhere.
        merged = documents.merge_patch(documents.spec_fields(masked(stored)), patch)
        spec = documents.parse_spec(
            documents.keep_masked_secrets(merged, stored), allow_plain_http=_plain_http(request)
        )
        return documents.updated_record(stored, spec, _now())

    record = await request.app[PROFILE_STORE].update(account, profile_id, change)
    return web.json_response(documents.response_body(_found(record)))


async def delete_profile(request: web.Request) -> web.Response:
    if not await request.app[PROFILE_STORE].delete(account_id(request), _profile_id(request)):
        raise Problem(404, NOT_FOUND)
    return web.Response(status=204)


async def rotate_secret(request: web.Request) -> web.Response:
    account, profile_id = account_id(request), _profile_id(request)
    secret = generate_secret()
    record = await request.app[PROFILE_STORE].update(
        account, profile_id, lambda stored: documents.rotated(stored, secret, _now())
    )
    return web.json_response(documents.response_body(_found(record), secret))


async def get_signing_key(request: web.Request) -> web.Response:
    record = _found(await request.app[PROFILE_STORE].get(account_id(request), _profile_id(request)))
    now = _now()
    keys = [
        PublicKey(
            public_key=public_key(s.secret_key), created_at=s.created_at, expires_at=s.expires_at
        )
        for s in record.signing_secrets
        if s.secret_key is not None and s.active(now)
    ]
    if not keys:
        # Only a profile saved before v1a existed and not changed since.
        raise Problem(
            404,
            "this profile has no ed25519 signing key yet; any change to it "
            "(e.g. setting signing.scheme) or a rotate-secret makes one",
            kind="no-signing-key",
        )
    body = SigningKey(scheme=record.signing.scheme, public_key=keys[0].public_key, public_keys=keys)
    return web.json_response(body.model_dump(mode="json"))


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """Validate every listing parameter (contract §3 "Listing"); 422 naming each bad one."""
    errors = QueryErrors()
    limit = page_limit(params.get("limit"), errors)
    title = params.get("title") or None
    if title is not None and (len(title) > 200 or "\x00" in title):
        errors.bad("title", "must be at most 200 characters, without NUL")
    method = one_of(params, "method", METHODS, errors)
    channel = one_of(params, "channel", CHANNELS, errors)
    window = utc_window(
        moment(params, "created_from", errors), moment(params, "created_to", errors)
    )
    after = cursor(params, errors, uuid.UUID)
    errors.raise_any()
    return ListQuery(
        limit=limit,
        title=title,
        method=method,
        channel=channel,
        created_from=window.start,
        created_to=window.end,
        created_before=window.before,
        after=after,
    )


async def list_profiles(request: web.Request) -> web.Response:
    query = parse_list_query(request.query)
    rows = await request.app[PROFILE_STORE].page(account_id(request), query)
    items, more = rows[: query.limit], len(rows) > query.limit
    return web.json_response(
        {
            "items": [documents.response_body(r) for r in items],
            "next_cursor": encode_cursor(items[-1].created_at, items[-1].id) if more else None,
        }
    )


def register(app: web.Application) -> None:
    app.router.add_post("/v1/callback-profiles", create_profile)
    app.router.add_get("/v1/callback-profiles", list_profiles)
    app.router.add_get("/v1/callback-profiles/{id}", get_profile)
    app.router.add_put("/v1/callback-profiles/{id}", replace_profile)
    app.router.add_patch("/v1/callback-profiles/{id}", patch_profile)
    app.router.add_delete("/v1/callback-profiles/{id}", delete_profile)
    app.router.add_post("/v1/callback-profiles/{id}/rotate-secret", rotate_secret)
    app.router.add_get("/v1/callback-profiles/{id}/signing-key", get_signing_key)


def _patch_schema() -> dict[str, Any]:
    """ProfileSpec with every field optional: PATCH sends only what changes."""
    schema = ProfileSpec.model_json_schema(ref_template="#/components/schemas/{model}")
    schema.pop("$defs", None)
    schema.pop("required", None)
    schema["title"] = "ProfilePatch"
    return schema


_PROFILE = json_body(ref(Profile), "The profile, secrets masked")
_WRITE_NOTE = (
    "Read-only fields echoed from a GET (id, created_at, ...) are ignored; a secret sent "
    "as `****` keeps the stored one."
)

OPENAPI_MODELS: tuple[type[BaseModel], ...] = (ProfileSpec, Profile, ProfilePage, SigningKey)
OPENAPI_SCHEMAS: dict[str, Any] = {"ProfilePatch": _patch_schema()}
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/callback-profiles": {
        "post": {
            "summary": "Create a callback profile",
            "description": _WRITE_NOTE,
            "requestBody": {"required": True, **json_body(ref(ProfileSpec))},
            "responses": {
                "201": json_body(ref(Profile), "Created; includes signing_secret once"),
                **problems(400, 422),
            },
        },
        "get": {
            "summary": "List callback profiles, newest first",
            "parameters": [
                query_param("title", "Case-insensitive substring of the title", {"type": "string"}),
                query_param("method", "HTTP method", {"enum": ["GET", "POST", "PUT", "DELETE"]}),
                query_param(
                    "channel",
                    "Channel",
                    {"enum": ["default", "sms", "email", "whatsapp", "chatbot"]},
                ),
                query_param(
                    "created_from",
                    "ISO 8601 date or date-time, inclusive (a date is the whole day)",
                    {"type": "string"},
                ),
                query_param(
                    "created_to",
                    "ISO 8601 date or date-time, inclusive (a date is the whole day)",
                    {"type": "string"},
                ),
                *PAGE_PARAMETERS,
            ],
            "responses": {"200": json_body(ref(ProfilePage), "One page"), **problems(422)},
        },
    },
    "/v1/callback-profiles/{id}": {
        "parameters": [path_id()],
        "get": {
            "summary": "Get a callback profile",
            "responses": {"200": _PROFILE, **problems(404)},
        },
        "put": {
            "summary": "Replace a callback profile (the channel cannot change)",
            "description": _WRITE_NOTE,
            "requestBody": {"required": True, **json_body(ref(ProfileSpec))},
            "responses": {"200": _PROFILE, **problems(400, 404, 422)},
        },
        "patch": {
            "summary": "Change some fields of a callback profile",
            "description": "encryption, authentication and required_options merge key by "
            "key; every other field sent replaces the stored one. " + _WRITE_NOTE,
            "requestBody": {"required": True, **json_body(ref("ProfilePatch"))},
            "responses": {"200": _PROFILE, **problems(400, 404, 422)},
        },
        "delete": {
            "summary": "Delete a callback profile",
            "responses": {"204": {"description": "Deleted"}, **problems(404)},
        },
    },
    "/v1/callback-profiles/{id}/rotate-secret": {
        "post": {
            "summary": "Make a new signing secret and ed25519 key; the previous ones stay "
            "valid for 24 h",
            "parameters": [path_id()],
            "responses": {
                "200": json_body(ref(Profile), "Rotated; includes the new signing_secret once"),
                **problems(404),
            },
        }
    },
    "/v1/callback-profiles/{id}/signing-key": {
        "get": {
            "summary": "The ed25519 public keys (whpk_) that verify the v1a signatures",
            "description": "Every profile has a key whatever its signing.scheme, so a "
            "receiver can install it before the scheme changes; a profile saved before v1a "
            "existed gets one on its next change or rotation (until then: 404).",
            "parameters": [path_id()],
            "responses": {
                "200": json_body(
                    ref(SigningKey), "The current key and, during a rotation, the previous one"
                ),
                **problems(404),
            },
        }
    },
}
