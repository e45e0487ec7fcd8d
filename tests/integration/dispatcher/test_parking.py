"""A throttled host's parked callbacks come back when it has room, not after a retry delay."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from callbacks.wire import H_DUE_MS
from dispatcher import Dispatcher

from tests.integration.dispatcher.helpers import (
    make_profile,
    metric,
    produce_events,
    publish_profiles,
    read_topic,
    sms_event,
)
from tests.integration.dispatcher.sink import Reply, Sink

pytestmark = pytest.mark.integration

EVENTS = 120
RETRY_DELAY_S = 60.0  # a third of it still leaves a busy machine time to start up


async def test_parked_callbacks_are_delivered_long_before_the_retry_delay(
    settings: Settings, sink: Sink
) -> None:
    settings = settings.model_copy(
        update={"retry_schedule": "60s,120s", "max_concurrency_per_host": 2}
    )
    await ensure_topics(settings)
    profile = make_profile(sink.url("/capped"))
    # A receiver that takes one callback at a time in 20 ms and refuses once: the limit
    # is cut from 2 to 1 (throttled) with a queue of ~1 s of its work; the rest is parked.
    sink.script(
        "/capped", Reply(delay_s=0.02), Reply(delay_s=0.02), Reply(429), Reply(delay_s=0.02)
    )
    await publish_profiles(settings, profile)
    events = [sms_event(profile) for _ in range(EVENTS)]
    await produce_events(settings, events)

    dispatcher = Dispatcher(settings)
    started = time.monotonic()
    running = asyncio.create_task(dispatcher.run())
    try:
        # Every callback is tried once, parked ones included, long before the delay.
        await sink.wait_for(EVENTS, "/capped", timeout_s=RETRY_DELAY_S / 3)
        took_s = time.monotonic() - started
        parked = metric(dispatcher, "callbacks_deliveries_deferred_total", reason="host_busy")
    finally:
        dispatcher.request_stop()
        await asyncio.wait_for(running, 15)
    timed = metric(dispatcher, "callbacks_delivery_duration_seconds_count")  # all finished

    # Every callback reached the endpoint once (one of them refused, its retry pending).
    ids = [orjson.loads(r.body)["id"] for r in sink.at("/capped")]
    assert len(set(ids)) == len(ids) == EVENTS
    assert parked >= 10
    assert timed == len(sink.at("/capped"))  # parks made no request: not timed
    assert took_s < RETRY_DELAY_S / 3
    records = await read_topic(settings, settings.topics.retry_for(2 * RETRY_DELAY_S))
    records += await read_topic(settings, settings.topics.retry_for(RETRY_DELAY_S))
    dues = [
        int(dict(r.headers)[H_DUE_MS]) - r.timestamp for r in records if H_DUE_MS in dict(r.headers)
    ]
    assert len(dues) == parked
    assert all(100 <= due <= RETRY_DELAY_S * 1000 / 3 for due in dues)
