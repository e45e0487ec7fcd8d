"""Tenants who share a receiver never fail each other (design: endpoint protection, per
tenant): breakers scoped to what failed, held-back callbacks that are not attempts, and
shares of the in-flight budget per host and per account. Real broker, real HTTP."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from callbacks.settings import Settings
from dispatcher import Dispatcher
from dispatcher.metrics import BREAKER_TRANSITIONS, DEFERRED_TOTAL

from tests.helpers import eventually
from tests.integration.dispatcher.helpers import (
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

SHORT_SCHEDULE = "200ms,200ms,400ms"


@contextlib.asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher(settings)
    task = asyncio.create_task(dispatcher.run())
    try:
        yield dispatcher
    finally:
        dispatcher.request_stop()
        await asyncio.wait_for(task, 30)


@contextlib.asynccontextmanager
async def sinks(*hosts: str) -> AsyncIterator[list[Sink]]:
    started = [Sink(host) for host in hosts]
    for server in started:
        await server.start()
    try:
        yield started
    finally:
        for server in started:
            await server.stop()


def ids(sink: Sink, path: str) -> set[str]:
    return {orjson.loads(r.body)["id"] for r in sink.at(path)}


def of(results: list[dict[str, Any]], profile_id: str) -> list[dict[str, Any]]:
    return [o for o in results if o["profile_id"] == profile_id]


async def test_one_tenants_failing_path_never_fails_another_tenant_on_the_same_host(
    topics: Settings, sink: Sink
) -> None:
    """B's path answers 503 to everything, A's path on the same host:port answers 200:
    every callback of A is delivered at its first attempt while B's fail and B's
    breaker opens; none of A's is held back or failed by B's breaker."""
    settings = topics.model_copy(update={"retry_schedule": SHORT_SCHEDULE, "shutdown_grace": "1s"})
    sink.script("/b", Reply(503))
    a = make_profile(sink.url("/a"), account_id="account-a")
    b = make_profile(sink.url("/b"), account_id="account-b")
    await publish_profiles(settings, a, b)
    events = []
    for _ in range(100):
        events.append(sms_event(b, account_id="account-b"))
        events.append(sms_event(a, account_id="account-a"))
    await produce_events(settings, events)
    async with running(settings) as dispatcher:

        async def all_of_a() -> bool:
            return len(ids(sink, "/a")) == 100

        await eventually(all_of_a, timeout_s=30, what="every callback of A delivered")

        async def b_open() -> bool:
            return metric(dispatcher, BREAKER_TRANSITIONS, state="open") >= 1

        await eventually(b_open, timeout_s=10, what="B's breaker open")
        held = metric(dispatcher, DEFERRED_TOTAL, reason="circuit_open")
    results = await outcomes(settings)
    mine = of(results, a.id)
    assert len(mine) == 100
    assert {(o["status"], o["attempt"], o["error"]) for o in mine} == {("delivered", 1, None)}
    theirs = of(results, b.id)
    assert {o["error"] for o in theirs} == {"HTTP 503"}  # held ones are not attempts
    assert held >= 1
    assert len(sink.at("/a")) == 100  # each once


async def test_a_callback_held_by_an_open_breaker_keeps_its_attempt_number(
    topics: Settings, sink: Sink
) -> None:
    """Two 503s open the endpoint's breaker; the callbacks queued behind them wait for
    its probe window instead of failing with circuit_open, and are delivered then at the
    attempt they were on."""
    settings = topics.model_copy(
        update={
            "retry_schedule": SHORT_SCHEDULE,
            "max_concurrency_per_host": 1,  # one at a time: the breaker opens mid-queue
            "breaker_failure_threshold": 2,
            "breaker_open": "500ms",
        }
    )
    sink.script("/flaky", Reply(503), Reply(503), Reply(200))
    profile = make_profile(sink.url("/flaky"))
    await publish_profiles(settings, profile)
    await produce_events(settings, [sms_event(profile) for _ in range(10)])
    dispatcher = await drain(settings, timeout_s=60)

    results = await outcomes(settings)
    assert all(o["error"] != "circuit_open" for o in results)
    delivered = [o for o in results if o["status"] == "delivered"]
    assert len({o["delivery_id"] for o in delivered}) == 10
    retried = [o for o in results if o["status"] == "retrying"]
    assert [(o["attempt"], o["error"]) for o in retried] == [(1, "HTTP 503")] * 2
    # Only the two that really failed moved on to attempt 2; waiting was not an attempt.
    assert sorted(o["attempt"] for o in delivered) == [1] * 8 + [2] * 2
    assert metric(dispatcher, DEFERRED_TOTAL, reason="circuit_open") >= 1
    assert len(sink.at("/flaky")) == 12


async def test_a_slow_host_holds_no_more_than_its_share_and_others_keep_flowing(
    topics: Settings, sink: Sink
) -> None:
    """A host answering 200 after 3 s gets a fifth of the stream: it never holds more
    than its share (a quarter of CALLBACKS_MAX_IN_FLIGHT: 10 of 40), its excess is parked,
    and the other host's callbacks are all delivered before its first answer."""
    settings = topics.model_copy(update={"max_in_flight": 40, "shutdown_grace": "1s"})
    async with sinks("127.0.0.1") as (slow,):
        slow.script("/slow", Reply(delay_s=3.0))
        slow_profile = make_profile(slow.url("/slow"))
        fast_profile = make_profile(sink.url("/fast"))
        await publish_profiles(settings, slow_profile, fast_profile)
        events = [sms_event(slow_profile if i % 5 == 0 else fast_profile) for i in range(250)]
        await produce_events(settings, events)
        async with running(settings) as dispatcher:
            await sink.wait_for(200, "/fast", timeout_s=30)
            first_slow = slow.at("/slow")[0].at
            parked = metric(dispatcher, DEFERRED_TOTAL, reason="host_busy")
        assert sink.at("/fast")[-1].at - first_slow < 3.0  # before its first answer
        assert slow.peak <= 10
        assert parked >= 1


async def test_an_account_with_many_slow_hosts_leaves_another_account_its_rate(
    topics: Settings, sink: Sink
) -> None:
    """One account's callbacks to 16 slow hosts (127.0.0.2 … 127.0.0.17, each within
    its host share) hold at most the account's share (half of 64); the other account's
    callbacks are all delivered before the first slow answer."""
    # No attempt times out (2 s in the suite): a request the dispatcher gave up on would
    # stay open at its sink while the next one to that host starts, and the sinks' sum
    # would count both.
    settings = topics.model_copy(
        update={"max_in_flight": 64, "shutdown_grace": "1s", "delivery_timeout": "10s"}
    )
    hosts = [f"127.0.0.{n}" for n in range(2, 18)]
    async with sinks(*hosts) as slow:
        for server in slow:
            server.script("/slow", Reply(delay_s=3.0))
        greedy = [make_profile(s.url("/slow"), account_id="account-greedy") for s in slow]
        other = make_profile(sink.url("/other"), account_id="account-other")
        await publish_profiles(settings, *greedy, other)
        events = []
        for i in range(200):
            if i % 2 == 0:
                events.append(sms_event(greedy[i % 16], account_id="account-greedy"))
            else:
                events.append(sms_event(other, account_id="account-other"))
        await produce_events(settings, events)
        peak = 0
        async with running(settings) as dispatcher:

            async def others_done() -> bool:
                nonlocal peak
                peak = max(peak, sum(s.active for s in slow))
                return len(sink.at("/other")) >= 100

            await eventually(others_done, timeout_s=30, interval_s=0.01, what="other account")
            first_slow = min(r.at for s in slow for r in s.received)
            parked = metric(dispatcher, DEFERRED_TOTAL, reason="account_busy")
        assert sink.at("/other")[-1].at - first_slow < 3.0
        assert peak <= 32
        assert max(s.peak for s in slow) <= 16
        assert parked >= 1


async def test_an_event_for_a_profile_not_yet_cached_waits_for_it(
    topics: Settings, sink: Sink
) -> None:
    """The API promises a saved profile governs deliveries within a second: an event
    that overtakes its new profile's record is held for it, then delivered."""
    profile = make_profile(sink.url("/new"))
    async with running(topics) as dispatcher:
        await produce_events(topics, [sms_event(profile)])
        source = topics.topics.source_for("sms.send").removeprefix(topics.topic_prefix)

        async def consumed() -> bool:
            return metric(dispatcher, "callbacks_events_consumed_total", topic=source) >= 1

        await eventually(consumed, timeout_s=20, what="the event fetched before its profile")
        await publish_profiles(topics, profile)
        await sink.wait_for(1, "/new", timeout_s=5)
    assert metric(dispatcher, "callbacks_profile_holds_total", result="found") == 1
    assert metric(dispatcher, "callbacks_events_skipped_total", reason="unknown_profile") == 0
