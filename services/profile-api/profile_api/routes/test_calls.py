"""Test calls (contract §3 "Test"): send one callback now and show both sides of it.

The request is built by the same pure ``build_request`` the dispatcher uses, from the
channel's sample values overridden by the caller's variables (attempt 1, ``is_test``
true), and sent through the same SSRF-guarded ``callbacks.sender``. Secrets never come
back: the echoed Authorization header and secret-looking header and query values are
masked. Nor do the service's insides: the echoed response body is cut at
``ECHO_BODY_BYTES`` and a connection error names only the host the user gave, never the
resolver's errno text or the addresses it found (which could map a private network).
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from callbacks import catalog
from callbacks.models.profiles import MASK, ProfileRecord
from callbacks.request import (
    RequestBuildError,
    build_request,
    static_auth_header,
)
from callbacks.sender import AttemptResult, Sender, TokenError, client_credentials_token
from callbacks.signing import generate_secret

from profile_api import documents
from profile_api.auth import account_id
from profile_api.keys import PROFILE_STORE, SETTINGS
from profile_api.openapi import json_body, path_id, problems
from profile_api.problems import FieldProblem, Problem, read_json_object, validation_problem
from profile_api.rate_limits import limit_test_calls

SENDER = web.AppKey("test_call_sender", Sender)
NOT_FOUND = "no callback profile with this id"
_SECRET_NAME = re.compile(r"auth|token|secret|key|password|passwd|cookie|session", re.IGNORECASE)
_SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie"})


def call_variables(
    profile: ProfileRecord, event: str | None, overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """Sample values of the profile's channel, the caller's overrides, then the three
    variables the dispatcher sets (a test is always attempt 1 and ``is_test``)."""
    events = [event] if event else list(profile.events)
    variables = dict(catalog.sample_values(profile.channel, events))
    variables.update(overrides)
    chosen = event or (profile.events[0] if profile.events else None)
    if chosen is not None:
        variables["event"] = chosen
        variables["channel"] = catalog.EVENTS[chosen].channel
    variables.update(attempt=1, is_test=True)
    return variables


def mask_headers(headers: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers:
        secret = name.lower() in _SECRET_HEADERS or _SECRET_NAME.search(name) is not None
        out[name] = MASK if secret else value
    return out


def mask_url(url: str) -> str:
    parts = urlsplit(url)
    if not parts.query:
        return url
    pairs = [
        (k, MASK if _SECRET_NAME.search(k) else v)
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    ]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


ECHO_BODY_BYTES = 64 * 1024  # contract §3: the echoed response body is cut at 64 KiB
_CONNECTION_DETAIL = re.compile(r"connection error: .*", re.DOTALL)


def public_error(error: str | None, url: str) -> str | None:
    """``error`` as the caller may see it: the detail of a connection error (``[Errno
    -2] Name or service not known``, ``Connect call failed ('10.1.2.3', 443)``) becomes
    the URL's host, which the caller wrote themselves."""
    if error is None:
        return None
    host = urlsplit(url).hostname or "the host"
    return _CONNECTION_DETAIL.sub(f"connection error: could not connect to {host}", error)


def _text(body: bytes | None) -> str | None:
    return None if body is None else body.decode("utf-8", errors="replace")


async def _auth_header(sender: Sender, profile: ProfileRecord) -> str | None:
    auth = profile.authentication
    if auth.type != "oauth2_client_credentials":
        return static_auth_header(profile)
    token, _lifetime = await client_credentials_token(
        sender,
        token_url=auth.token_url or "",
        client_id=auth.client_id or "",
        client_secret=auth.client_secret or "",
        scope=auth.scope,
    )
    return f"Bearer {token}"


async def _run(request: web.Request, profile: ProfileRecord) -> web.Response:
    body = await read_json_object(request) if request.can_read_body else {}
    event = body.get("event")
    overrides = body.get("variables") or {}
    problems_found: list[FieldProblem] = []
    if event is not None and (
        not isinstance(event, str)
        or event not in catalog.EVENTS
        or (profile.channel != "default" and event not in profile.events)
    ):
        problems_found.append(FieldProblem(field="event", message="not an event of this profile"))
    if not isinstance(overrides, dict):
        problems_found.append(FieldProblem(field="variables", message="must be an object"))
    if problems_found:
        raise validation_problem(problems_found)
    sender = request.app[SENDER]
    variables = call_variables(profile, event, overrides)
    delivery_id = "msg_test_" + uuid.uuid4().hex
    try:
        auth_header = await _auth_header(sender, profile)
        sent = build_request(
            profile,
            variables,
            delivery_id=delivery_id,
            timestamp=int(time.time()),
            auth_header=auth_header,
        )
    except (RequestBuildError, TokenError) as exc:
        error = public_error(exc.reason, profile.authentication.token_url or profile.url)
        return web.json_response(
            {"request": None, "response": None, "error": error, "delivered": False}
        )
    result: AttemptResult = await sender.send(sent)
    response = None
    if result.status is not None:
        response = {
            "status": result.status,
            "headers": dict(result.headers),
            "body": _text(result.body[:ECHO_BODY_BYTES]),
            "latency_ms": round(result.latency_ms, 3),
        }
    return web.json_response(
        {
            "request": {
                "method": sent.method,
                "url": mask_url(sent.url),
                "headers": mask_headers(sent.headers),
                "body": _text(sent.body),
            },
            "response": response,
            "error": public_error(result.error, sent.url),
            "delivered": result.ok,
        }
    )


async def call_saved_profile(request: web.Request) -> web.Response:
    limit_test_calls(request, account_id(request))
    try:
        profile_id = uuid.UUID(request.match_info["id"])
    except ValueError:
        raise Problem(404, NOT_FOUND) from None
    profile = await request.app[PROFILE_STORE].get(account_id(request), profile_id)
    if profile is None:
        raise Problem(404, NOT_FOUND)
    return await _run(request, profile)


async def call_unsaved_profile(request: web.Request) -> web.Response:
    limit_test_calls(request, account_id(request))
    body = await read_json_object(request)
    spec_body = body.get("profile", body)
    if not isinstance(spec_body, dict):
        raise validation_problem([FieldProblem(field="profile", message="must be an object")])
    fields = {k: v for k, v in spec_body.items() if k not in ("event", "variables")}
    spec = documents.parse_spec(
        documents.writable(fields), allow_plain_http=request.app[SETTINGS].allow_plain_http
    )
    now = datetime.now(UTC)
    profile = documents.new_record(
        spec,
        profile_id=str(uuid.uuid4()),
        account=account_id(request),
        now=now,
        signing_secret=generate_secret(),  # throwaway: an unsaved profile has none yet
    )
    return await _run(request, profile)


async def _sender_context(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    sender = Sender.from_settings(settings)
    app[SENDER] = sender
    yield
    await sender.close()


def register(app: web.Application) -> None:
    app.cleanup_ctx.append(_sender_context)
    app.router.add_post("/v1/callback-profiles/test", call_unsaved_profile)
    app.router.add_post("/v1/callback-profiles/{id}/test", call_saved_profile)


_TEST_BODY = {
    "type": "object",
    "properties": {
        "event": {"type": "string", "description": "One of the profile's events"},
        "variables": {"type": "object", "description": "Overrides of the sample values"},
    },
}
_RESULT = {
    "type": "object",
    "properties": {
        "request": {
            "type": ["object", "null"],
            "properties": {
                "method": {"type": "string"},
                "url": {"type": "string"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"type": ["string", "null"]},
            },
        },
        "response": {
            "type": ["object", "null"],
            "properties": {
                "status": {"type": "integer"},
                "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                "body": {"type": ["string", "null"]},
                "latency_ms": {"type": "number"},
            },
        },
        "error": {"type": ["string", "null"]},
        "delivered": {"type": "boolean"},
    },
    "required": ["request", "response", "error", "delivered"],
}

OPENAPI_PATHS: dict[str, Any] = {
    "/v1/callback-profiles/test": {
        "post": {
            "summary": "Send a test callback for an unsaved profile (the profile is the body, "
            "plus optional event and variables)",
            "requestBody": {"required": True, **json_body({"type": "object"})},
            "responses": {
                "200": json_body(_RESULT, "What was sent and received"),
                **problems(400, 422),
            },
        }
    },
    "/v1/callback-profiles/{id}/test": {
        "parameters": [path_id()],
        "post": {
            "summary": "Send a test callback for a saved profile",
            "requestBody": {"required": False, **json_body(_TEST_BODY)},
            "responses": {
                "200": json_body(_RESULT, "What was sent and received"),
                **problems(400, 404, 422),
            },
        },
    },
}
