"""Endpoint protection, the SSRF guard and OAuth2 tokens (design: endpoint protection)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from callbacks.settings import Settings
from dispatcher import Dispatcher
from dispatcher.metrics import BREAKER_TRANSITIONS
from dispatcher.metrics import DEFERRED_TOTAL as DEFERRED

from tests.helpers import eventually
from tests.integration.dispatcher.helpers import (
    dead_letters,
    drain,
    make_profile,
    metric,
    outcomes,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Reply, Sink

pytestmark = pytest.mark.integration


@pytest.fixture
async def hanging() -> AsyncIterator[Sink]:
    server = Sink()
    server.script("/hang", Reply(hang=True))
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def test_hanging_endpoint_does_not_slow_healthy_ones(
    topics: Settings, sink: Sink, hanging: Sink
) -> None:
    settings = topics.model_copy(
        update={
            "delivery_timeout": "5s",
            "breaker_failure_threshold": 3,
            "max_in_flight": 300,
            "shutdown_grace": "1s",
        }
    )
    healthy = make_profile(sink.url("/fast"))
    dead = make_profile(hanging.url("/hang"))
    await publish_profiles(settings, healthy, dead)
    events = []
    for i in range(600):
        events.append(sms_event(dead if i % 3 == 0 else healthy))
    await produce_events(settings, events)
    dispatcher = Dispatcher(settings)
    running = asyncio.create_task(dispatcher.run())
    try:
        await sink.wait_for(400, "/fast", timeout_s=30)

        async def opened() -> bool:
            return metric(dispatcher, BREAKER_TRANSITIONS, state="open") >= 1

        await eventually(opened, timeout_s=30, what="the hanging endpoint's breaker open")

        async def held() -> bool:
            return metric(dispatcher, DEFERRED, reason="circuit_open") >= 1

        await eventually(held, timeout_s=10, what="callbacks held back by the open breaker")
    finally:
        dispatcher.request_stop()
        await asyncio.wait_for(running, 30)

    fast = sink.at("/fast")
    assert len(fast) == 400
    hung = hanging.at("/hang")
    # Every healthy callback arrived before the first hanging attempt even timed out.
    assert fast[-1].at - hung[0].at < 5.0
    # The breaker opened after 3 timeouts; the rest are held back (not attempts: no
    # outcome, no "circuit_open" failure) until its probe window.
    errors = {o["error"] for o in await outcomes(settings) if o["profile_id"] == dead.id}
    assert errors == {"timeout"}
    assert len(hung) < 200  # the hanging host was not called once per callback


async def test_private_targets_refused_without_calling_them(topics: Settings, sink: Sink) -> None:
    settings = topics.model_copy(update={"allow_private_targets": False})
    by_ip = make_profile(sink.url("/ip"))
    by_name = make_profile(f"http://localhost:{sink.port}/name")
    await publish_profiles(settings, by_ip, by_name)
    await produce_events(settings, [sms_event(by_ip), sms_event(by_name)])
    dispatcher = await drain(settings)
    assert sink.received == []
    results = await outcomes(settings)
    assert {(o["status"], o["final"]) for o in results} == {("failed", True)}
    assert all("refused" in o["error"] for o in results)
    assert {d["cb-reason"] for d in await dead_letters(settings)} == {"forbidden_target"}
    assert metric(dispatcher, "callbacks_dead_letters_total", reason="forbidden_target") == 2


async def test_oauth2_token_cached_and_refreshed_after_401(topics: Settings, sink: Sink) -> None:
    profile = make_profile(
        sink.url("/oauth"),
        authentication={
            "type": "oauth2_client_credentials",
            "token_url": sink.url("/token"),
            "client_id": "cid",
            "client_secret": "csecret",
            "scope": "callbacks",
        },
    )
    sink.script("/oauth", Reply(401), Reply(200))
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile)])
    await drain(topics)
    await produce_events(topics, [sms_event(profile)])
    await drain(topics)

    calls = sink.at("/oauth")
    # The 401 dropped tok1; tok2 was fetched and the attempt retried at once. The second
    # run is a new process in effect (new dispatcher), so it fetches tok3 once.
    assert [c.header("Authorization") for c in calls] == [
        "Bearer tok1",
        "Bearer tok2",
        "Bearer tok3",
    ]
    assert len(sink.token_requests) == 3
    token_request = sink.token_requests[0]
    assert token_request.header(
        "Authorization",
    ).startswith("Basic ")  # type: ignore[union-attr]
    assert b"grant_type=client_credentials" in token_request.body
    assert b"scope=callbacks" in token_request.body
    statuses = [o["status"] for o in await outcomes(topics)]
    assert statuses == ["delivered", "delivered"]


async def test_oauth2_token_shared_by_concurrent_callbacks(topics: Settings, sink: Sink) -> None:
    profile = make_profile(
        sink.url("/many"),
        authentication={
            "type": "oauth2_client_credentials",
            "token_url": sink.url("/token"),
            "client_id": "cid",
            "client_secret": "csecret",
        },
    )
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile) for _ in range(20)])
    await drain(topics)
    assert len(sink.at("/many")) == 20
    assert len(sink.token_requests) == 1
