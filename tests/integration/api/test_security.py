"""What the API refuses so that one tenant cannot harm another or the service (README
"Security"): size limits and quotas, secrets that follow the URL, rate limits, control
characters, credential-like headers, https in production mode, API key revocation,
hostile cursors and nesting."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
from aiohttp import web
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port

from tests.integration.api.helpers import ADMIN, Api, sms_profile, start_app

PROFILES = "/v1/callback-profiles"
PROBLEM = "application/problem+json"


def fields(reply: Any) -> list[str]:
    return [e["field"] for e in reply.body["errors"]]


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


async def started(settings: Settings, session: aiohttp.ClientSession) -> tuple[web.AppRunner, Api]:
    runner, base = await start_app(settings)
    return runner, await Api(base, session).new_account()


# --- size limits and quotas ---------------------------------------------------------


async def test_a_huge_password_is_refused_naming_the_field(api: Api) -> None:
    body = sms_profile(authentication={"type": "basic", "username": "u", "password": "p" * 790_000})
    reply = await api.call("POST", PROFILES, json=body)
    assert reply.status == 422
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    assert fields(reply) == ["authentication.password"]
    assert "at most 4096" in reply.body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"headers": {f"X-H{i}": "v" for i in range(51)}}, "headers"),
        ({"headers": {"X-Big": "v" * 4097}}, "headers.X-Big"),
        ({"query_params": {f"q{i}": "v" for i in range(51)}}, "query_params"),
        ({"title": "t" * 201}, "title"),
        ({"body": '{"a": "' + "x" * (256 * 1024) + '"}'}, "body"),
    ],
)
async def test_sizes_over_their_limits_are_422_naming_the_field(
    api: Api, overrides: dict[str, Any], field: str
) -> None:
    reply = await api.call("POST", PROFILES, json=sms_profile(**overrides))
    assert reply.status == 422, reply.body
    assert field in fields(reply)


async def test_profiles_per_account_are_capped(
    api_settings: Settings, session: aiohttp.ClientSession
) -> None:
    runner, api = await started(
        api_settings.model_copy(update={"max_profiles_per_account": 2}), session
    )
    try:
        for _ in range(2):
            assert (await api.call("POST", PROFILES, json=sms_profile())).status == 201
        refused = await api.call("POST", PROFILES, json=sms_profile())
        assert refused.status == 422
        assert fields(refused) == ["profile"]
        assert "2 profiles" in refused.body["errors"][0]["message"]
        other = await Api(api.base, session).new_account()
        assert (await other.call("POST", PROFILES, json=sms_profile())).status == 201
    finally:
        await runner.cleanup()


# --- masked secrets follow the URL ----------------------------------------------------

OAUTH = {
    "type": "oauth2_client_credentials",
    "token_url": "https://auth.example.com/token",
    "client_id": "c",
    "client_secret": "cs",
}


STORED_SECRETS = {"encryption.key", "authentication.password", "headers.X-Api-Key"}


@pytest.mark.parametrize(
    "change",
    [
        {"url": "https://attacker.example.net/hooks"},
        {"url": "http://example.com/hooks/sms"},  # the scheme is part of the origin
        {"url": "https://example.com:8443/hooks/sms"},  # so is the port
    ],
)
async def test_a_patch_moving_the_url_elsewhere_must_carry_the_secrets(
    api: Api, change: dict[str, Any]
) -> None:
    created = (await api.call("POST", PROFILES, json=sms_profile())).body
    path = f"{PROFILES}/{created['id']}"
    reply = await api.call("PATCH", path, json=change)  # secrets not sent: stored ones
    assert reply.status == 422, reply.body
    assert set(fields(reply)) == STORED_SECRETS
    assert "send this secret again" in reply.body["errors"][0]["message"]
    # The same move with the secrets given again is fine.
    again = {
        **change,
        "encryption": {"key": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="},
        "authentication": {"password": "new"},
        "headers": {"X-Api-Key": "new-key", "Content-Type": "application/json"},
    }
    assert (await api.call("PATCH", path, json=again)).status == 200


async def test_a_put_moving_the_url_with_masks_is_refused_and_a_same_origin_one_kept(
    api: Api,
) -> None:
    created = (await api.call("POST", PROFILES, json=sms_profile())).body
    path = f"{PROFILES}/{created['id']}"
    shown = (await api.call("GET", path)).body
    same_origin = await api.call("PUT", path, json={**shown, "url": "https://EXAMPLE.com:443/v2"})
    assert same_origin.status == 200, same_origin.body
    moved = await api.call("PUT", path, json={**shown, "url": "https://evil.example.org/x"})
    assert moved.status == 422
    assert set(fields(moved)) == STORED_SECRETS


async def test_changing_the_token_url_needs_the_client_secret_again(api: Api) -> None:
    body = sms_profile(authentication=OAUTH, headers={"Content-Type": "application/json"})
    created = (await api.call("POST", PROFILES, json=body)).body
    path = f"{PROFILES}/{created['id']}"
    moved = await api.call(
        "PATCH", path, json={"authentication": {"token_url": "https://evil.example.org/token"}}
    )
    assert moved.status == 422
    assert set(fields(moved)) == {"authentication.client_secret", "encryption.key"}
    scope_only = await api.call("PATCH", path, json={"authentication": {"scope": "read"}})
    assert scope_only.status == 200, scope_only.body


# --- control characters, credential headers, https ----------------------------------


@pytest.mark.parametrize("title", ["Report\r\nBcc: victim@example.com", "a\x07b", "tab\tbed"])
async def test_titles_and_account_names_with_control_characters_are_refused(
    api: Api, anonymous: Api, title: str
) -> None:
    reply = await api.call("POST", PROFILES, json=sms_profile(title=title))
    assert reply.status == 422
    assert fields(reply) == ["title"]
    account = await anonymous.call("POST", "/v1/accounts", json={"name": title}, headers=ADMIN)
    assert account.status == 422
    assert fields(account) == ["name"]


async def test_credential_like_headers_are_sealed_at_rest_and_masked(
    api: Api, migrated_database: str
) -> None:
    headers = {
        "X-Api-Key": "k-1",
        "x-auth-token": "k-2",
        "X-Webhook-Secret": "k-3",
        "X-Password": "k-4",
        "X-Trace": "plain",
        "Content-Type": "application/json",
    }
    created = await api.call("POST", PROFILES, json=sms_profile(headers=headers))
    assert created.status == 201, created.body
    shown = (await api.call("GET", f"{PROFILES}/{created.body['id']}")).body["headers"]
    assert shown == {
        **dict.fromkeys(("X-Api-Key", "x-auth-token", "X-Webhook-Secret", "X-Password"), "****"),
        "X-Trace": "plain",
        "Content-Type": "application/json",
    }
    conn = await asyncpg.connect(migrated_database)
    try:
        stored = await conn.fetchval(
            "SELECT document::text FROM callback_profiles WHERE id = $1",
            uuid.UUID(created.body["id"]),
        )
    finally:
        await conn.close()
    for secret in ("k-1", "k-2", "k-3", "k-4"):
        assert f'"{secret}"' not in stored
    assert '"plain"' in stored


async def test_production_mode_wants_https_unless_plain_http_is_allowed(
    api_settings: Settings, session: aiohttp.ClientSession
) -> None:
    runner, api = await started(
        api_settings.model_copy(update={"allow_plain_http": False}), session
    )
    try:
        plain = await api.call("POST", PROFILES, json=sms_profile(url="http://example.com/h"))
        assert plain.status == 422
        assert fields(plain) == ["url"]
        token = await api.call(
            "POST",
            PROFILES,
            json=sms_profile(
                authentication={**OAUTH, "token_url": "http://auth.example.com/token"},
                headers={},
            ),
        )
        assert token.status == 422
        assert fields(token) == ["authentication.token_url"]
        assert (await api.call("POST", PROFILES, json=sms_profile())).status == 201
    finally:
        await runner.cleanup()


# --- API keys --------------------------------------------------------------------------


async def test_api_keys_are_listed_without_secrets_and_a_revoked_key_is_401(
    anonymous: Api,
) -> None:
    account = (
        await anonymous.call("POST", "/v1/accounts", json={"name": "Keys"}, headers=ADMIN)
    ).body
    keys_path = f"/v1/accounts/{account['id']}/api-keys"
    second = (await anonymous.call("POST", keys_path, headers=ADMIN)).body
    listed = await anonymous.call("GET", keys_path, headers=ADMIN)
    assert listed.status == 200
    items = listed.body["items"]
    assert [i["id"] for i in items][1] == second["id"]
    assert len(items) == 2
    assert all(set(i) == {"id", "prefix", "created_at", "revoked_at"} for i in items)
    text = orjson.dumps(listed.body).decode()
    assert account["api_key"] not in text
    assert second["api_key"] not in text

    assert (await anonymous.call("GET", PROFILES, key=second["api_key"])).status == 200
    revoked = await anonymous.call("DELETE", f"{keys_path}/{second['id']}", headers=ADMIN)
    assert revoked.status == 204
    refused = await anonymous.call("GET", PROFILES, key=second["api_key"])
    assert refused.status == 401
    assert (await anonymous.call("GET", PROFILES, key=account["api_key"])).status == 200
    after = (await anonymous.call("GET", keys_path, headers=ADMIN)).body["items"]
    assert [i["revoked_at"] is not None for i in after] == [False, True]

    assert (await anonymous.call("GET", keys_path)).status == 401  # admin token needed
    other = f"/v1/accounts/{uuid.uuid4()}/api-keys/{second['id']}"
    assert (await anonymous.call("DELETE", other, headers=ADMIN)).status == 404


# --- hostile cursors and nesting ------------------------------------------------------


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        _cursor(["2026-01-01T00:00:00+00:00", 5]),
        _cursor(["2026-01-01T00:00:00+00:00", ["x"]]),
        _cursor(["2026-01-01T00:00:00+00:00", {"a": 1}]),
        _cursor([None, None]),
        _cursor({"a": 1, "b": 2}),
        _cursor("ab"),
        _cursor(7),
        "é",
        "%%%",
    ],
)
async def test_crafted_cursors_are_422(api: Api, cursor: str) -> None:
    reply = await api.call("GET", PROFILES, params={"cursor": cursor})
    assert reply.status == 422, reply.body
    assert fields(reply) == ["cursor"]


@pytest.mark.parametrize("depth", [100, 990, 1020, 5000])
async def test_deeply_nested_json_is_a_4xx_problem(api: Api, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    body = '{"title": "x", "url": "https://example.com/", "headers": ' + nested + "}"
    reply = await api.call(
        "POST", PROFILES, data=body, headers={"Content-Type": "application/json"}
    )
    assert 400 <= reply.status < 500, reply.body
    assert reply.headers["Content-Type"].startswith(PROBLEM)
    deep_object = '{"a": ' * depth + "1" + "}" * depth
    reply = await api.call(
        "POST", f"{PROFILES}/test", data=deep_object, headers={"Content-Type": "application/json"}
    )
    assert 400 <= reply.status < 500, reply.body


# --- rate limits and the Test call's echo ---------------------------------------------


async def test_test_calls_and_send_now_are_rate_limited_per_account(
    api_settings: Settings, session: aiohttp.ClientSession
) -> None:
    limited = api_settings.model_copy(
        update={
            "test_call_limit": 2,
            "test_call_window": "1h",
            "send_now_limit": 1,
            "send_now_window": "1h",
        }
    )
    runner, api = await started(limited, session)
    try:
        profile = (await api.call("POST", PROFILES, json=sms_profile())).body
        path = f"{PROFILES}/{profile['id']}/test"
        for _ in range(2):
            assert (await api.call("POST", path)).status == 200
        refused = await api.call("POST", f"{PROFILES}/test", json=sms_profile())
        assert refused.status == 429
        assert refused.headers["Content-Type"].startswith(PROBLEM)
        assert int(refused.headers["Retry-After"]) > 0
        assert refused.body["type"].endswith("rate-limited")
        other = await Api(api.base, session).new_account()
        assert (await other.call("POST", f"{PROFILES}/test", json=sms_profile())).status == 200

        settings = {"enabled": True, "frequency": "daily", "recipients": ["a@example.com"],
                    "timezone": "UTC"}  # fmt: skip
        assert (await api.call("PUT", "/v1/callback-reports/settings", json=settings)).status == 200
        assert (await api.call("POST", "/v1/callback-reports/send-now")).status == 202
        again = await api.call("POST", "/v1/callback-reports/send-now")
        assert again.status == 429
        assert int(again.headers["Retry-After"]) >= 3000  # one per hour
    finally:
        await runner.cleanup()


@pytest.fixture
async def loopback_sink() -> AsyncIterator[str]:
    """A receiver answering 200 with a 200 KiB body."""

    async def handle(_request: web.Request) -> web.Response:
        return web.Response(body=b"x" * (200 * 1024))

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_the_test_call_echo_is_cut_and_hides_resolver_details(
    api_settings: Settings, session: aiohttp.ClientSession, loopback_sink: str
) -> None:
    runner, api = await started(
        api_settings.model_copy(update={"allow_private_targets": True}), session
    )
    try:
        body = sms_profile(url=f"{loopback_sink}/hook")
        echoed = await api.call("POST", f"{PROFILES}/test", json=body)
        assert echoed.status == 200, echoed.body
        assert echoed.body["delivered"] is True
        assert 0 < len(echoed.body["response"]["body"]) <= 64 * 1024

        closed = free_port()
        refused = await api.call(
            "POST", f"{PROFILES}/test", json=sms_profile(url=f"http://localhost:{closed}/h")
        )
        error = refused.body["error"]
        assert error == "connection error: could not connect to localhost", error
    finally:
        await runner.cleanup()


async def test_metrics_can_leave_the_api_port(
    api_settings: Settings, session: aiohttp.ClientSession
) -> None:
    port = free_port()
    runner, api = await started(api_settings.model_copy(update={"api_metrics_port": port}), session)
    try:
        assert (await api.call("GET", "/metrics")).status == 404
        assert (await api.call("GET", "/healthz")).status == 200  # probes stay on the API port
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            assert "callbacks_http_requests_total" in await response.text()
    finally:
        await runner.cleanup()
