"""The API's test calls (contract §3 "Test") and their identity with dispatcher requests."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from callbacks.models.events import parse_event
from callbacks.request import build_request
from callbacks.settings import Settings
from dispatcher.rendering import variables_for_profile
from profile_api.routes import test_calls
from profile_api.routes.test_calls import call_variables
from standardwebhooks.webhooks import Webhook

from tests.integration.api.helpers import Api, start_app
from tests.integration.dispatcher.helpers import make_profile, sms_event
from tests.integration.dispatcher.sink import Reply, Sink

pytestmark = pytest.mark.integration

PROFILE = {
    "title": "Order SMS status",
    "channel": "sms",
    "events": ["sms.send"],
    "method": "POST",
    "headers": {"X-Api-Key": "abc", "X-Plain": "visible"},
    "query_params": {"msg": "{{message_id}}"},
    "body_type": "json",
    "body": '{"id": "{{message_id}}", "status": "{{status}}", "test": {{is_test}}}',
    "authentication": {"type": "basic", "username": "u", "password": "p"},
}


async def _api(settings: Settings) -> AsyncIterator[Api]:
    runner, base = await start_app(settings)
    try:
        async with aiohttp.ClientSession() as session:
            yield await Api(base, session).new_account()
    finally:
        await runner.cleanup()


@pytest.fixture
async def api(topics: Settings) -> AsyncIterator[Api]:
    async for client in _api(topics):
        yield client


async def test_saved_profile_test_call_shows_request_and_response(api: Api, sink: Sink) -> None:
    created = await api.call(
        "POST", "/v1/callback-profiles", json={**PROFILE, "url": sink.url("/t")}
    )
    assert created.status == 201, created.body
    sink.script("/t", Reply(201, headers={"X-Seen": "yes"}, body=b"thanks"))
    reply = await api.call(
        "POST",
        f"/v1/callback-profiles/{created.body['id']}/test",
        json={"event": "sms.send", "variables": {"status": "failed"}},
    )
    assert reply.status == 200, reply.body
    result = reply.body
    assert result["delivered"] is True
    assert result["error"] is None
    assert result["response"]["status"] == 201
    assert result["response"]["body"] == "thanks"
    assert result["response"]["headers"]["X-Seen"] == "yes"
    assert result["response"]["latency_ms"] >= 0
    sent = result["request"]
    assert sent["method"] == "POST"
    assert sent["headers"]["Authorization"] == "****"
    assert sent["headers"]["X-Api-Key"] == "****"
    assert sent["headers"]["X-Plain"] == "visible"
    assert json.loads(sent["body"])["status"] == "failed"
    assert json.loads(sent["body"])["test"] is True

    [got] = sink.at("/t")
    assert got.header("Authorization") == "Basic " + base64.b64encode(b"u:p").decode()
    assert got.body.decode() == sent["body"]
    Webhook(created.body["signing_secret"]).verify(got.body, got.headers)


async def test_unsaved_profile_test_call_cuts_the_response_body(api: Api, sink: Sink) -> None:
    sink.script("/big", Reply(200, body=b"x" * 100_000))
    reply = await api.call(
        "POST", "/v1/callback-profiles/test", json={**PROFILE, "url": sink.url("/big")}
    )
    assert reply.status == 200, reply.body
    assert len(reply.body["response"]["body"]) == 64 * 1024
    assert reply.body["delivered"] is True


async def test_unsaved_profile_with_a_failing_endpoint(api: Api, sink: Sink) -> None:
    sink.script("/no", Reply(503, body=b"down"))
    reply = await api.call(
        "POST", "/v1/callback-profiles/test", json={**PROFILE, "url": sink.url("/no")}
    )
    assert reply.body["delivered"] is False
    assert reply.body["error"] == "HTTP 503"
    assert reply.body["response"]["status"] == 503


async def test_test_call_obeys_the_ssrf_guard(topics: Settings, sink: Sink) -> None:
    settings = topics.model_copy(update={"allow_private_targets": False})
    async for api in _api(settings):
        reply = await api.call(
            "POST", "/v1/callback-profiles/test", json={**PROFILE, "url": sink.url("/ssrf")}
        )
        assert reply.status == 200, reply.body
        assert reply.body["delivered"] is False
        assert reply.body["response"] is None
        assert "refused" in reply.body["error"]
    assert sink.received == []


async def test_unknown_profile_is_404(api: Api) -> None:
    reply = await api.call(
        "POST", "/v1/callback-profiles/8d7c1d4e-0000-4000-8000-000000000000/test"
    )
    assert reply.status == 404


def test_test_call_and_dispatcher_build_byte_identical_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = os.urandom(32)
    profile = make_profile(
        "https://example.com/hooks/{{message_id}}",
        headers={"X-Id": "{{event_id}}"},
        query_params={"to": "{{to}}"},
        body='{"id": "{{message_id}}", "to": "{{to}}", "attempt": {{attempt}}, "t": {{is_test}}}',
        encryption={
            "enabled": True,
            "algorithm": "aes-256-gcm",
            "scope": "values",
            "key": base64.b64encode(key).decode(),
        },
        authentication={"type": "bearer", "token": "t0k"},
    )
    raw = sms_event(profile, data={"to": 'a "b" <c> & d'})
    event = parse_event(json.dumps(raw).encode())
    dispatcher_vars = variables_for_profile(event, profile, attempt=1, is_test=True)
    overrides = {k: v for k, v in dispatcher_vars.items() if k not in ("attempt", "is_test")}
    api_vars = call_variables(profile, "sms.send", overrides)

    # Fixed IVs: the only randomness in rendering.
    monkeypatch.setattr("callbacks.encryption.os.urandom", lambda n: b"\x07" * n)
    stamp = int(datetime.now(UTC).timestamp())
    assert test_calls.build_request is build_request  # the route calls the one builder
    from_dispatcher = build_request(
        profile, dispatcher_vars, delivery_id="msg_1", timestamp=stamp, auth_header="Bearer t0k"
    )
    from_api = build_request(
        profile, api_vars, delivery_id="msg_1", timestamp=stamp, auth_header="Bearer t0k"
    )
    assert from_api == from_dispatcher
