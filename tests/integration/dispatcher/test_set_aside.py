"""A record the broker will never take is set aside, not retried for ever: its callback
ends ``failed`` with the reason, the dead letter keeps where the event sits, and the
records after it flow and commit (design: nothing stalls on one bad record).

Two ways a record is too large: over ``CALLBACKS_KAFKA_MAX_RECORD_BYTES`` (refused before
it is sent, on every broker), and over a topic's own ``max.message.bytes`` (refused by
the broker when the batch arrives; Apache Kafka only, as Tansu keeps no topic limits).
"""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from callbacks.settings import Settings
from dispatcher.metrics import DEAD_LETTERS_TOTAL

from tests.helpers import KAFKA_FACING
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

pytestmark = KAFKA_FACING

LIMIT = 16 * 1024
BIG = "x" * (LIMIT + 4096)  # an event whose retry record is over LIMIT
GOOD = 10


async def _one_big_failing_then_good(settings: Settings, sink: Sink) -> tuple[str, list[str]]:
    """A profile whose endpoint answers 503 gets one event too large to retry; another
    profile gets ``GOOD`` ordinary events after it, on the same partitions."""
    sink.script("/down", Reply(status=503))
    failing = make_profile(sink.url("/down"))
    healthy = make_profile(sink.url("/up"))
    await publish_profiles(settings, failing, healthy)
    big = sms_event(failing, data={"message_id": "m-big", "sender": BIG})
    good = [sms_event(healthy) for _ in range(GOOD)]
    await produce_events(settings, [big, *good])
    return big["event_id"], [e["event_id"] for e in good]


def _assert_set_aside(
    results: list[dict[str, object]], big_id: str, sink: Sink, *, refused_late: bool
) -> None:
    """The attempt was made (503) and its retry could not be written, so the callback
    ends ``failed`` with the reason. ``refused_late``: the broker refused the retry after
    the attempt's ``retrying`` outcome was already written."""
    assert len(sink.at("/down")) == 1
    mine = [o for o in results if o["event_id"] == big_id]
    before = [("retrying", False, 1)] if refused_late else []
    assert [(o["status"], o["final"], o["attempt"]) for o in mine] == [
        *before,
        ("failed", True, 1),
    ]
    assert str(mine[-1]["error"]).startswith("too_large")
    assert mine[-1]["latency_ms"] is None  # the outcome of the set-aside, not of a request


async def test_a_retry_over_the_record_limit_ends_failed_and_the_rest_flows(
    topics: Settings, sink: Sink
) -> None:
    big_id, good_ids = await _one_big_failing_then_good(topics, sink)  # the gateway's limit
    settings = topics.model_copy(update={"kafka_max_record_bytes": LIMIT})  # the dispatcher's

    dispatcher = await drain(settings, timeout_s=60)

    results = await outcomes(settings)
    _assert_set_aside(results, big_id, sink, refused_late=False)
    delivered = {o["event_id"] for o in results if o["status"] == "delivered"}
    assert delivered == set(good_ids)
    dead = await dead_letters(settings)
    assert [(d["cb-reason"], d["value"]) for d in dead] == [("too_large", None)]
    assert metric(dispatcher, DEAD_LETTERS_TOTAL, reason="too_large") == 1


@pytest.mark.brokers("kafka")
async def test_a_retry_the_broker_refuses_as_too_large_ends_failed_and_the_rest_flows(
    topics: Settings, sink: Sink
) -> None:
    # The client would send it; the first retry topic's own limit refuses it.
    retry_topic = topics.topics.retry_for(topics.retry_delays_s[0])
    await _set_topic_config(topics, retry_topic, {"max.message.bytes": str(LIMIT)})
    big_id, good_ids = await _one_big_failing_then_good(topics, sink)

    dispatcher = await drain(topics, timeout_s=60)

    results = await outcomes(topics)
    _assert_set_aside(results, big_id, sink, refused_late=True)
    delivered = {o["event_id"] for o in results if o["status"] == "delivered"}
    assert delivered == set(good_ids)
    dead = await dead_letters(topics)
    # The dead letter topic has no such limit: the event itself is kept for a replay.
    assert [d["cb-reason"] for d in dead] == ["too_large"]
    assert b"m-big" in (dead[0]["value"] or b"")
    assert metric(dispatcher, DEAD_LETTERS_TOTAL, reason="too_large") == 1


async def _set_topic_config(settings: Settings, topic: str, configs: dict[str, str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs)])
    finally:
        await admin.close()
