"""Operations: /healthz, /readyz (cache loaded), /metrics, and one log line per attempt."""

from __future__ import annotations

import asyncio
import logging

import aiohttp
import structlog
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from dispatcher import Dispatcher
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from tests.helpers import KAFKA_FACING, eventually
from tests.integration.dispatcher.helpers import (
    make_profile,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Reply, Sink

pytestmark = KAFKA_FACING


async def test_ops_endpoints_and_canonical_log_lines(topics: Settings, sink: Sink) -> None:
    port = free_port()
    settings = topics.model_copy(update={"dispatcher_metrics_port": port})
    ok = make_profile(sink.url("/ok"))
    flaky = make_profile(sink.url("/flaky"))
    sink.script("/flaky", Reply(500), Reply(200))
    await publish_profiles(settings, ok, flaky)
    dispatcher = Dispatcher(settings, serve_ops=True)
    base = f"http://127.0.0.1:{port}"
    saved = structlog.get_config()
    # The suite logs at warning; retries are info, successes debug.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG))
    with capture_logs() as logs:
        running = asyncio.create_task(dispatcher.run())
        try:
            async with aiohttp.ClientSession() as session:

                async def ready() -> bool:
                    try:
                        async with session.get(f"{base}/readyz") as response:
                            return response.status == 200
                    except aiohttp.ClientError:
                        return False

                await eventually(ready, timeout_s=20, what="/readyz")
                async with session.get(f"{base}/healthz") as response:
                    assert response.status == 200
                await produce_events(settings, [sms_event(ok), sms_event(flaky)])
                await sink.wait_for(3)

                async def metrics_text() -> str:
                    async with session.get(f"{base}/metrics") as response:
                        text = await response.text()
                    return (
                        text
                        if 'callbacks_deliveries_total{outcome="delivered"} 2.0' in text
                        else ""
                    )

                text = await eventually(metrics_text, timeout_s=10, what="metrics")
                for name in (
                    "callbacks_delivery_duration_seconds_bucket",
                    "callbacks_retries_scheduled_total 1.0",
                    "callbacks_profiles_cached 2.0",
                    'callbacks_events_consumed_total{topic="sms.send"} 2.0',
                    'callbacks_events_consumed_total{topic="callbacks.retry.200ms"} 1.0',
                    "callbacks_consumer_lag",
                    "callbacks_dead_letters_total",
                    "callbacks_events_skipped_total",
                ):
                    assert name in text, name
        finally:
            dispatcher.request_stop()
            await asyncio.wait_for(running, 15)
            structlog.configure(**saved)
    attempts = [e for e in logs if e["event"] in ("callback_delivered", "retry_scheduled")]
    assert sorted(e["event"] for e in attempts) == [
        "callback_delivered",
        "callback_delivered",
        "retry_scheduled",
    ]
    for entry in attempts:
        assert {"event_id", "profile_id", "account_id", "attempt", "delivery_id"} <= entry.keys()


async def test_consumer_lag_counts_from_the_committed_offset(topics: Settings, sink: Sink) -> None:
    """Records started but not finished are still lag: the metric is end offsets minus
    committed offsets (it used to count from the last record started)."""
    settings = topics.model_copy(update={"delivery_timeout": "30s"})
    hung = make_profile(sink.url("/hang"))
    sink.script("/hang", Reply(hang=True))
    await publish_profiles(settings, hung)
    registry = CollectorRegistry()
    dispatcher = Dispatcher(settings, registry=registry)
    running = asyncio.create_task(dispatcher.run())

    async def lag() -> float:
        return sum(
            s.value
            for m in registry.collect()
            if m.name == "callbacks_consumer_lag"
            for s in m.samples
            if s.labels.get("topic") == "sms.send"
        )

    try:
        await produce_events(settings, [sms_event(hung) for _ in range(5)])
        await sink.wait_for(5)  # every one started, none finished

        async def lag_is(value: float) -> bool:
            return await lag() == value

        await eventually(lambda: lag_is(5), what="lag of the unfinished records")
        sink.release()
        await eventually(lambda: lag_is(0), what="lag back to 0 once committed")
    finally:
        dispatcher.request_stop()
        sink.release()
        await running
