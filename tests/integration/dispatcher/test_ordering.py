"""Per-message ordering on the real broker (contract §3b ``ordering``, docs/ordering.md).

The sink's path carries the status (``/…/{{status}}``), so each status of one message has
its own script: the first callback fails twice, the others succeed.
"""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient
from callbacks.kafka import ensure_topics, make_consumer, topic_partitions
from callbacks.settings import Settings
from dispatcher import Dispatcher

from tests.helpers import KAFKA_FACING, eventually
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
from tests.integration.dispatcher.test_shutdown import _start_dispatcher as start_dispatcher

pytestmark = KAFKA_FACING

BODY = '{"id": "{{message_id}}", "status": "{{status}}"}'


def burst(profile: Any, message_id: str, statuses: list[str]) -> list[dict[str, Any]]:
    """One message's statuses, one second apart by ``occurred_at``, in this order."""
    return [
        sms_event(
            profile,
            data={"message_id": message_id, "status": status},
            occurred_at=f"2026-03-01T10:00:{i:02d}Z",
        )
        for i, status in enumerate(statuses)
    ]


def statuses_seen(sink: Sink, prefix: str) -> list[str]:
    """The status of every request at ``prefix``, in arrival order."""
    return [json.loads(r.body)["status"] for r in sink.received if r.path.startswith(prefix)]


async def test_fifo_delivers_a_message_in_event_order_while_its_first_is_retried(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/f/{{status}}"), body=BODY, ordering="fifo")
    sink.script("/f/accepted", Reply(503), Reply(503), Reply(200))
    await publish_profiles(topics, profile)
    message = f"m-{uuid.uuid4().hex[:8]}"
    await produce_events(topics, burst(profile, message, ["accepted", "sent", "delivered"]))
    dispatcher = await drain(topics)

    order = statuses_seen(sink, "/f/")
    assert order == ["accepted", "accepted", "accepted", "sent", "delivered"]
    finals = [(o["event_id"], o["status"]) for o in await outcomes(topics) if o["final"]]
    assert [s for _, s in finals] == ["delivered", "delivered", "delivered"]
    # The later two waited without an attempt: one outcome each.
    assert len(await outcomes(topics)) == 5
    assert metric(dispatcher, "callbacks_deliveries_deferred_total", reason="ordering") >= 2
    assert metric(dispatcher, "callbacks_ordering_waiting") == 0


async def test_without_ordering_a_later_status_overtakes_a_retried_one(
    topics: Settings, sink: Sink
) -> None:
    """The control: the same burst without ``ordering`` is not delivered in order."""
    profile = make_profile(sink.url("/n/{{status}}"), body=BODY)
    sink.script("/n/accepted", Reply(503), Reply(503), Reply(200))
    await publish_profiles(topics, profile)
    message = f"m-{uuid.uuid4().hex[:8]}"
    await produce_events(topics, burst(profile, message, ["accepted", "sent", "delivered"]))
    await drain(topics)
    order = statuses_seen(sink, "/n/")
    assert order[-1] == "accepted"


async def test_latest_never_sends_an_older_status_after_a_newer_one(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/l/{{status}}"), body=BODY, ordering="latest")
    await publish_profiles(topics, profile)
    message = f"m-{uuid.uuid4().hex[:8]}"
    delivered, sent = burst(profile, message, ["sent", "delivered"])[::-1]
    await produce_events(topics, [delivered, sent])  # the late `sent` comes second
    dispatcher = await drain(topics)

    assert statuses_seen(sink, "/l/") == ["delivered"]
    by_event = {o["event_id"]: o for o in await outcomes(topics)}
    stale = by_event[sent["event_id"]]
    assert (stale["status"], stale["final"], stale["attempt"]) == ("stale", True, 1)
    assert stale["http_status"] is None
    assert stale["latency_ms"] is None
    assert by_event[delivered["event_id"]]["status"] == "delivered"
    assert metric(dispatcher, "callbacks_deliveries_total", outcome="stale") == 1


async def test_latest_ends_a_retried_status_stale_once_a_newer_one_landed(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/lr/{{status}}"), body=BODY, ordering="latest")
    sink.script("/lr/accepted", Reply(503), Reply(503), Reply(200))
    await publish_profiles(topics, profile)
    message = f"m-{uuid.uuid4().hex[:8]}"
    events = burst(profile, message, ["accepted", "sent", "delivered"])
    await produce_events(topics, events)
    await drain(topics)

    order = statuses_seen(sink, "/lr/")
    assert order == ["accepted", "sent", "delivered"]  # accepted's first try only
    mine = [o for o in await outcomes(topics) if o["event_id"] == events[0]["event_id"]]
    assert [(o["attempt"], o["status"]) for o in mine] == [(1, "retrying"), (2, "stale")]


async def test_latest_holds_across_a_member_restart(topics: Settings, sink: Sink) -> None:
    """The member that delivered `delivered` is gone; the next one reads the state topic
    back and ends the late `sent` stale."""
    profile = make_profile(sink.url("/lx/{{status}}"), body=BODY, ordering="latest")
    await publish_profiles(topics, profile)
    message = f"m-{uuid.uuid4().hex[:8]}"
    sent, delivered = burst(profile, message, ["sent", "delivered"])
    await produce_events(topics, [delivered])
    await drain(topics)
    assert statuses_seen(sink, "/lx/") == ["delivered"]

    await produce_events(topics, [sent])
    await drain(topics)  # a new member, with nothing in memory
    assert statuses_seen(sink, "/lx/") == ["delivered"]
    last = (await outcomes(topics))[-1]
    assert (last["event_id"], last["status"]) == (sent["event_id"], "stale")


async def test_fifo_holds_across_a_member_restart(topics: Settings, sink: Sink) -> None:
    """A member stops while a message's first callback waits for its retry; statuses
    arriving after that meet the next member, which reads the chain back and keeps
    them waiting until the first one lands."""
    slow = topics.model_copy(update={"retry_schedule": "8s,1s"})
    await ensure_topics(slow)  # its retry topics
    profile = make_profile(sink.url("/fx/{{status}}"), body=BODY, ordering="fifo")
    sink.script("/fx/accepted", Reply(503), Reply(503), Reply(200))
    await publish_profiles(slow, profile)
    message = f"m-{uuid.uuid4().hex[:8]}"
    accepted, *later = burst(profile, message, ["accepted", "sent", "delivered"])
    await produce_events(slow, [accepted])

    first = Dispatcher(slow)
    running = asyncio.create_task(first.run())
    await sink.wait_for(1, "/fx/accepted")
    first.request_stop()  # the retry record and the chain are handed off first
    await asyncio.wait_for(running, 20)
    assert metric(first, "callbacks_retries_scheduled_total") == 1

    await produce_events(slow, later)
    await drain(slow, timeout_s=60)  # a new member, with nothing in memory
    order = statuses_seen(sink, "/fx/")
    assert order == ["accepted"] * 3 + ["sent", "delivered"]


async def test_latest_holds_across_a_rebalance(topics: Settings, sink: Sink) -> None:
    """A second member joins and takes partitions over: the late statuses of messages
    the first member delivered newer ones of end stale on whichever member owns them."""
    profile = make_profile(sink.url("/lb/{{status}}"), body=BODY, ordering="latest")
    await publish_profiles(topics, profile)
    messages = [f"m-{uuid.uuid4().hex[:8]}-{i}" for i in range(30)]  # on every partition
    pairs = [burst(profile, m, ["sent", "delivered"]) for m in messages]
    await produce_events(topics, [delivered for _, delivered in pairs])

    first, second = Dispatcher(topics), Dispatcher(topics)
    runs = [asyncio.create_task(first.run())]
    try:
        await sink.wait_for(len(messages), "/lb/delivered", timeout_s=30)
        runs.append(asyncio.create_task(second.run()))

        async def split() -> bool:
            mine, theirs = set(first._epochs), set(second._epochs)
            return bool(mine and theirs) and not mine & theirs

        await eventually(split, timeout_s=30, what="partitions shared by both members")
        await produce_events(topics, [sent for sent, _ in pairs])

        async def all_stale() -> list[dict[str, Any]]:
            stale = [o for o in await outcomes(topics) if o["status"] == "stale"]
            return stale if len(stale) == len(messages) else []

        await eventually(all_stale, timeout_s=30, what="every late status stale")
    finally:
        for member in (first, second):
            member.request_stop()
        await asyncio.wait_for(asyncio.gather(*runs), 30)
    assert metric(second, "callbacks_deliveries_total", outcome="stale") > 0  # it took some
    assert statuses_seen(sink, "/lb/") == ["delivered"] * len(messages)


async def _source_committed(settings: Settings) -> bool:
    """Every record of the sms source topic is committed by the dispatchers' group."""
    topic = settings.topics.source_for("sms.send")
    tps = await topic_partitions(settings, topic)
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        group = f"{settings.topic_prefix}callbacks-dispatcher"
        committed = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()

    def offset(tp: Any) -> int:
        at = committed.get(tp)
        return at.offset if at is not None and at.offset >= 0 else 0

    return all(offset(tp) >= end for tp, end in ends.items())


async def test_fifo_holds_across_a_member_crash(
    topics: Settings, sink: Sink, tmp_path: Path
) -> None:
    """A member is killed (SIGKILL) once the first callback of a message waits for its
    retry and its source offset is committed: the chain it wrote before committing is
    what keeps the later statuses behind it on the next member."""
    slow = topics.model_copy(update={"retry_schedule": "8s,1s"})
    await ensure_topics(slow)
    profile = make_profile(sink.url("/fk/{{status}}"), body=BODY, ordering="fifo")
    sink.script("/fk/accepted", Reply(503), Reply(503), Reply(200))
    await publish_profiles(slow, profile)
    message = f"m-{uuid.uuid4().hex[:8]}"
    accepted, *later = burst(profile, message, ["accepted", "sent", "delivered"])
    await produce_events(slow, [accepted])

    process = start_dispatcher(slow, tmp_path / "dispatcher.log")
    try:
        await sink.wait_for(1, "/fk/accepted", timeout_s=30)
        await eventually(
            lambda: _source_committed(slow), timeout_s=20, what="the source offset committed"
        )
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    await produce_events(slow, later)
    await drain(slow, timeout_s=60)  # the next member
    assert statuses_seen(sink, "/fk/") == ["accepted"] * 3 + ["sent", "delivered"]
