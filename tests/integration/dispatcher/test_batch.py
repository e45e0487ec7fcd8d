"""Callback batches on the real broker (contract §3b ``batch``, dispatcher.batch)."""

from __future__ import annotations

import json

from callbacks.settings import Settings
from standardwebhooks.webhooks import Webhook

from tests.helpers import KAFKA_FACING
from tests.integration.dispatcher.helpers import (
    drain,
    make_profile,
    outcomes,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Reply, Sink

pytestmark = KAFKA_FACING

BODY = '{"id": "{{message_id}}", "event": "{{event_id}}"}'


async def test_25_events_go_in_batches_of_10_10_and_5_each_signed(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(
        sink.url("/batch"), body=BODY, batch={"max_events": 10, "max_wait": "1s"}
    )
    await publish_profiles(topics, profile)
    events = [sms_event(profile) for _ in range(25)]
    await produce_events(topics, events)
    await drain(topics)

    got = sink.at("/batch")
    assert [len(json.loads(r.body)) for r in got] == [10, 10, 5]
    # The last five waited for max_wait: they joined when the second batch left, and it
    # reached the sink at most a few tenths of a second later on a busy machine.
    assert got[2].at - got[1].at >= 0.6
    for request in got:
        Webhook(profile.signing_secrets[0].secret).verify(request.body, request.headers)
        assert "application/json" in (request.header("Content-Type") or "")
    assert len({r.header("webhook-id") for r in got}) == 3
    sent = [item["event"] for r in got for item in json.loads(r.body)]
    assert sorted(sent) == sorted(e["event_id"] for e in events)

    records = await outcomes(topics)
    assert len(records) == 25
    assert {o["event_id"] for o in records} == {e["event_id"] for e in events}
    assert {(o["status"], o["attempt"], o["http_status"]) for o in records} == {
        ("delivered", 1, 200)
    }
    # Each member keeps its own delivery id (the delivery log's row), not the batch's.
    assert len({o["delivery_id"] for o in records}) == 25
    assert not {o["delivery_id"] for o in records} & {r.header("webhook-id") for r in got}


async def test_a_failed_batch_is_retried_as_a_batch(topics: Settings, sink: Sink) -> None:
    profile = make_profile(sink.url("/again"), body=BODY, batch={"max_events": 4, "max_wait": "2s"})
    sink.script("/again", Reply(503), Reply(200))
    await publish_profiles(topics, profile)
    events = [sms_event(profile) for _ in range(4)]
    await produce_events(topics, events)
    await drain(topics)

    first, second = sink.at("/again")

    def members(body: bytes) -> list[str]:
        return sorted(item["event"] for item in json.loads(body))

    assert members(first.body) == members(second.body) == sorted(e["event_id"] for e in events)
    assert first.header("webhook-id") == second.header("webhook-id")  # same members
    Webhook(profile.signing_secrets[0].secret).verify(second.body, second.headers)
    seen = sorted((o["attempt"], o["status"], o["http_status"]) for o in await outcomes(topics))
    assert seen == [(1, "retrying", 503)] * 4 + [(2, "delivered", 200)] * 4
