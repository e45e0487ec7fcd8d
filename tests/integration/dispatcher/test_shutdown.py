"""Nothing is lost: graceful SIGTERM-style stop, a redelivery request, and kill -9 (§6)."""

from __future__ import annotations

import asyncio
import collections
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from callbacks.models.outcomes import RedeliverRequest
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from dispatcher import Dispatcher

from tests.helpers import KAFKA_FACING, eventually
from tests.integration.dispatcher.helpers import (
    drain,
    make_profile,
    outcomes,
    produce,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Reply, Sink

pytestmark = KAFKA_FACING


ID_BODY = '{"event_id": "{{event_id}}"}'


def event_ids(sink: Sink, path: str) -> collections.Counter[str]:
    return collections.Counter(json.loads(r.body)["event_id"] for r in sink.at(path))


async def test_graceful_stop_finishes_in_flight_and_loses_nothing(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/g"), body=ID_BODY)
    sink.script("/g", Reply(delay_s=0.05))
    await publish_profiles(topics, profile)
    events = [sms_event(profile) for _ in range(400)]
    await produce_events(topics, events)

    first = Dispatcher(
        topics.model_copy(update={"max_concurrency_per_host": 16, "max_in_flight": 32})
    )
    running = asyncio.create_task(first.run())
    await sink.wait_for(50, "/g")
    first.request_stop()
    await asyncio.wait_for(running, 15)
    stopped_at = len(sink.at("/g"))
    assert stopped_at < 400, "stopped before everything was delivered"

    await drain(topics)
    seen = event_ids(sink, "/g")
    assert set(seen) == {e["event_id"] for e in events}
    # In-flight callbacks were finished and committed before the stop: no duplicates.
    assert sum(seen.values()) - len(seen) == 0


async def test_stop_with_short_grace_hands_unfinished_work_to_the_next_owner(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/slow"), body=ID_BODY)
    sink.script("/slow", Reply(delay_s=1.0))
    await publish_profiles(topics, profile)
    events = [sms_event(profile) for _ in range(40)]
    await produce_events(topics, events)
    first = Dispatcher(topics.model_copy(update={"shutdown_grace": "100ms"}))
    running = asyncio.create_task(first.run())
    await sink.wait_for(20, "/slow")
    first.request_stop()
    await asyncio.wait_for(running, 15)
    sink.script("/slow", Reply())
    await drain(topics)
    seen = event_ids(sink, "/slow")
    assert set(seen) == {e["event_id"] for e in events}


async def test_redelivery_request_sends_the_same_callback_again(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/again"), body=ID_BODY)
    sink.script("/again", Reply(500), Reply(500), Reply(500), Reply(200))
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    await produce_events(topics, [event])
    await drain(topics)
    last = (await outcomes(topics))[-1]
    assert (last["status"], last["attempt"]) == ("failed", 3)

    request = RedeliverRequest(
        delivery_id=last["delivery_id"],
        event_id=event["event_id"],
        account_id=event["account_id"],
        profile_id=profile.id,
        source_topic=last["source_topic"],
        source_partition=last["source_partition"],
        source_offset=last["source_offset"],
        attempt=4,
        requested_at=datetime.now(UTC),
    )
    await produce(topics, topics.topics.redeliver, [request.model_dump_json().encode()])
    await drain(topics)
    calls = sink.at("/again")
    assert len(calls) == 4
    assert calls[-1].header("webhook-id") == last["delivery_id"]
    final = (await outcomes(topics))[-1]
    assert (final["status"], final["attempt"], final["final"]) == ("delivered", 4, True)


def _start_dispatcher(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        **settings.kafka_environment(),
        "CALLBACKS_KAFKA_PARTITIONS": str(settings.kafka_partitions),
        "CALLBACKS_TOPIC_PREFIX": settings.topic_prefix,
        "CALLBACKS_MASTER_KEY": settings.master_key.get_secret_value()
        if settings.master_key
        else "",
        "CALLBACKS_ALLOW_PRIVATE_TARGETS": "true",
        "CALLBACKS_RETRY_SCHEDULE": settings.retry_schedule,
        "CALLBACKS_DELIVERY_TIMEOUT": "2s",
        "CALLBACKS_CONSUMER_SESSION_TIMEOUT": "2s",
        "CALLBACKS_DISPATCHER_METRICS_PORT": str(free_port()),
        "CALLBACKS_API_HOST": "127.0.0.1",
        "CALLBACKS_LOG_LEVEL": "warning",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "dispatcher"], env=env, stdout=out, stderr=subprocess.STDOUT
        )


async def test_kill_9_mid_flow_loses_nothing(topics: Settings, sink: Sink, tmp_path: Path) -> None:
    total = 5000
    profile = make_profile(sink.url("/crash"), body=ID_BODY)
    await publish_profiles(topics, profile)
    events = [sms_event(profile) for _ in range(total)]
    log = tmp_path / "dispatcher.log"
    process = _start_dispatcher(topics, log)
    try:
        # Events keep flowing while the dispatcher is killed and restarted.
        feeding = asyncio.create_task(_feed(topics, events, batch=250, pause_s=0.05))
        await sink.wait_for(total // 4, "/crash", timeout_s=60)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
        killed_at = len(sink.at("/crash"))
        process = _start_dispatcher(topics, log)
        await feeding
        wanted = {e["event_id"] for e in events}

        async def all_delivered() -> bool:
            return set(event_ids(sink, "/crash")) >= wanted

        await eventually(all_delivered, timeout_s=90, interval_s=0.2, what="every event delivered")
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    seen = event_ids(sink, "/crash")
    duplicates = sum(seen.values()) - len(seen)
    print(
        f"\ncrash test: {total} events, killed after {killed_at} deliveries, "
        f"{duplicates} duplicates ({duplicates / total:.1%})"
    )
    assert process.returncode == 0, log.read_text()[-2000:]
    assert set(seen) == {e["event_id"] for e in events}


async def _feed(
    settings: Settings, events: list[dict[str, object]], *, batch: int, pause_s: float
) -> None:
    started = time.monotonic()
    for i in range(0, len(events), batch):
        await produce_events(settings, events[i : i + batch])
        await asyncio.sleep(pause_s)
    assert time.monotonic() - started < 60
