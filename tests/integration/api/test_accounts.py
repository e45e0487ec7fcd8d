"""Accounts, API keys, authentication and the ops endpoints (contract §2, §8)."""

from __future__ import annotations

import hashlib
import uuid

import aiohttp
import asyncpg
from callbacks.settings import Settings

from tests.integration.api.helpers import ADMIN, Api, start_app

PROBLEM = "application/problem+json"


async def test_admin_creates_account_and_keys_stored_as_hashes_only(
    anonymous: Api, migrated_database: str
) -> None:
    created = await anonymous.call("POST", "/v1/accounts", json={"name": "Acme"}, headers=ADMIN)
    assert created.status == 201
    assert created.body["name"] == "Acme"
    first_key = created.body["api_key"]
    assert first_key.startswith("cbk_")
    assert len(first_key) > 40

    second = await anonymous.call(
        "POST", f"/v1/accounts/{created.body['id']}/api-keys", headers=ADMIN
    )
    assert second.status == 201
    second_key = second.body["api_key"]
    assert second_key != first_key
    assert second.body["account_id"] == created.body["id"]

    for key in (first_key, second_key):
        assert (await anonymous.call("GET", "/v1/callback-profiles", key=key)).status == 200

    conn = await asyncpg.connect(migrated_database)
    try:
        rows = await conn.fetch(
            "SELECT key_hash, prefix FROM api_keys WHERE account_id = $1",
            uuid.UUID(created.body["id"]),
        )
        dump = str(await conn.fetch("SELECT * FROM api_keys"))
    finally:
        await conn.close()
    assert {bytes(r["key_hash"]) for r in rows} == {
        hashlib.sha256(k.encode()).digest() for k in (first_key, second_key)
    }
    assert first_key not in dump
    assert second_key not in dump


async def test_admin_api_needs_the_bearer_token(anonymous: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic x"}):
        reply = await anonymous.call("POST", "/v1/accounts", json={"name": "x"}, headers=headers)
        assert reply.status == 401
        assert reply.headers["Content-Type"].startswith(PROBLEM)
    missing = await anonymous.call("POST", f"/v1/accounts/{uuid.uuid4()}/api-keys", headers=ADMIN)
    assert missing.status == 404
    bad_body = await anonymous.call("POST", "/v1/accounts", json={"nome": "x"}, headers=ADMIN)
    assert bad_body.status == 422
    assert {e["field"] for e in bad_body.body["errors"]} == {"name", "nome"}


async def test_admin_api_is_absent_without_an_admin_token(api_settings: Settings) -> None:
    runner, base = await start_app(api_settings.model_copy(update={"admin_token": None}))
    try:
        async with aiohttp.ClientSession() as session:
            reply = await Api(base, session).call(
                "POST", "/v1/accounts", json={"name": "x"}, headers=ADMIN
            )
    finally:
        await runner.cleanup()
    assert reply.status == 404
    assert reply.headers["Content-Type"].startswith(PROBLEM)


async def test_every_v1_call_needs_a_valid_api_key(anonymous: Api) -> None:
    some_id = uuid.uuid4()
    calls = [
        ("GET", "/v1/callback-profiles"),
        ("POST", "/v1/callback-profiles"),
        ("GET", f"/v1/callback-profiles/{some_id}"),
        ("PATCH", f"/v1/callback-profiles/{some_id}"),
        ("PUT", f"/v1/callback-profiles/{some_id}"),
        ("DELETE", f"/v1/callback-profiles/{some_id}"),
        ("POST", f"/v1/callback-profiles/{some_id}/rotate-secret"),
        ("GET", "/v1/channels"),
    ]
    for method, path in calls:
        for key in (None, "", "cbk_not-a-key"):
            reply = await anonymous.call(method, path, key=key, json={})
            assert reply.status == 401, (method, path, key)
            assert reply.headers["Content-Type"].startswith(PROBLEM)
            assert reply.body["status"] == 401
            assert reply.body["title"] == "Unauthorized"


async def test_errors_are_problem_documents_with_a_request_id(api: Api) -> None:
    unknown = await api.call("GET", "/v1/nothing-here")
    assert unknown.status == 404
    assert unknown.headers["Content-Type"].startswith(PROBLEM)
    assert set(unknown.body) >= {"type", "title", "status", "detail"}
    assert unknown.headers["X-Request-Id"]

    not_allowed = await api.call("POST", "/v1/channels")
    assert not_allowed.status == 405
    assert not_allowed.body["status"] == 405

    echoed = await api.call("GET", "/v1/callback-profiles", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"


async def test_ops_endpoints(anonymous: Api, api: Api) -> None:
    assert (await anonymous.call("GET", "/healthz")).status == 200
    ready = await anonymous.call("GET", "/readyz")
    assert ready.status == 200, ready.body
    assert ready.body["checks"] == {"database": True, "broker": True}
    await api.call("GET", "/v1/callback-profiles")
    metrics = await anonymous.call("GET", "/metrics")
    assert metrics.status == 200
    text = metrics.body
    assert 'callbacks_http_requests_total{route="/v1/callback-profiles",status="200"}' in text
    assert "callbacks_http_request_duration_seconds_bucket" in text
    assert "callbacks_outbox_pending" in text
