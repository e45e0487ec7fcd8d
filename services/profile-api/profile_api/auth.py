"""Who is calling: the account behind an ``api-key`` header, and the admin bearer token.

API keys are random (``cbk_`` + 32 random bytes, URL-safe) and only their SHA-256 is
stored, so a database leak does not leak usable keys. A plain hash (no salt, no slow
KDF) is enough because the keys carry 256 bits of entropy; it also keeps the lookup
one indexed equality.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from aiohttp import web

from profile_api.keys import ACCOUNT_ID, POOL, SETTINGS
from profile_api.problems import Handler, Problem

API_KEY_HEADER = "api-key"
KEY_PREFIX = "cbk_"
ADMIN_PATH_PREFIX = "/v1/accounts"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def account_id(request: web.Request) -> str:
    """The calling account's id; every /v1 handler except the admin ones may rely on it."""
    try:
        return request[ACCOUNT_ID]
    except KeyError:
        # Only reachable from a route the middleware does not guard (a wiring mistake).
        raise Problem(401, "missing api-key header") from None


def require_admin(request: web.Request) -> None:
    """Admin calls need ``Authorization: Bearer <CALLBACKS_ADMIN_TOKEN>``.

    With no admin token configured the admin API does not exist: 404, not 401, so a
    production deployment does not even advertise it.
    """
    token = request.app[SETTINGS].admin_token
    if token is None:
        raise web.HTTPNotFound
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected):
        raise Problem(
            401, "admin bearer token missing or wrong", headers={"WWW-Authenticate": "Bearer"}
        )


async def _lookup(request: web.Request, key: str) -> str | None:
    row = await request.app[POOL].fetchrow(
        "SELECT account_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL",
        hash_api_key(key),
    )
    return None if row is None else str(row["account_id"])


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Resolve ``api-key`` on every matched /v1 route except the admin ones."""
    guarded = (
        request.path.startswith("/v1/")
        and not request.path.startswith(ADMIN_PATH_PREFIX)
        and request.match_info.http_exception is None
    )
    if guarded:
        key = request.headers.get(API_KEY_HEADER, "").strip()
        if not key:
            raise Problem(401, "missing api-key header")
        found = await _lookup(request, key)
        if found is None:
            raise Problem(401, "unknown or revoked api-key")
        request[ACCOUNT_ID] = found
    return await handler(request)
