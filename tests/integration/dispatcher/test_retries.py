"""Failed attempts: retry topics, Retry-After, final failures and dead letters (§3a, §5, §6)."""

from __future__ import annotations

import json
import time

import pytest
from callbacks.kafka import ensure_topics, make_producer
from callbacks.settings import Settings
from callbacks.wire import SourcePosition
from dispatcher.jobs import Job

from tests.helpers import KAFKA_FACING
from tests.integration.dispatcher.helpers import (
    ACCOUNT,
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


async def test_retries_follow_the_schedule_with_one_webhook_id(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/r"))
    sink.script("/r", Reply(500), Reply(502), Reply(200))
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    await produce_events(topics, [event])
    dispatcher = await drain(topics)

    got = sink.at("/r")
    assert len(got) == 3
    assert len({r.header("webhook-id") for r in got}) == 1
    assert got[1].at - got[0].at >= 0.2
    assert got[2].at - got[1].at >= 0.4
    seen = [
        (o["attempt"], o["status"], o["final"], o["http_status"]) for o in await outcomes(topics)
    ]
    assert seen == [
        (1, "retrying", False, 500),
        (2, "retrying", False, 502),
        (3, "delivered", True, 200),
    ]
    assert metric(dispatcher, "callbacks_retries_scheduled_total") == 2
    assert await dead_letters(topics) == []


async def test_exhausted_schedule_is_final_and_dead_lettered(topics: Settings, sink: Sink) -> None:
    profile = make_profile(sink.url("/x"))
    sink.script("/x", Reply(500))
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    await produce_events(topics, [event])
    dispatcher = await drain(topics)

    assert len(sink.at("/x")) == 3
    final = (await outcomes(topics))[-1]
    assert (final["attempt"], final["status"], final["final"]) == (3, "failed", True)
    [dead] = await dead_letters(topics)
    assert dead["cb-reason"] == "exhausted"
    assert dead["cb-error"] == "HTTP 500"
    assert json.loads(dead["value"])["event_id"] == event["event_id"]
    assert metric(dispatcher, "callbacks_dead_letters_total", reason="exhausted") == 1


async def test_retry_after_moves_to_the_next_delay_but_one(topics: Settings, sink: Sink) -> None:
    profile = make_profile(sink.url("/ra"))
    sink.script("/ra", Reply(429, headers={"Retry-After": "30"}), Reply(200))
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile)])
    await drain(topics)
    first, second = sink.at("/ra")
    # Capped at the 400ms delay (the next but one), not the 200ms one, nor 30 s.
    assert 0.4 <= second.at - first.at < 5


@pytest.mark.parametrize(
    ("reply", "retry_on", "reason", "error_part"),
    [
        (Reply(410), "all_failures", "gone", "HTTP 410"),
        (Reply(404), "transient_only", "not_retryable", "HTTP 404"),
        (
            Reply(302, headers={"Location": "https://elsewhere.example/x"}),
            "transient_only",
            "not_retryable",
            "https://elsewhere.example/x",
        ),
    ],
)
async def test_final_failures_without_retry(
    topics: Settings, sink: Sink, reply: Reply, retry_on: str, reason: str, error_part: str
) -> None:
    profile = make_profile(sink.url("/f"), retry_on=retry_on)
    sink.script("/f", reply)
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile)])
    await drain(topics)
    assert len(sink.at("/f")) == 1
    [outcome] = await outcomes(topics)
    assert outcome["status"] == "failed"
    assert outcome["final"] is True
    assert error_part in outcome["error"]
    [dead] = await dead_letters(topics)
    assert dead["cb-reason"] == reason


async def test_invalid_events_go_to_dead_letters_and_never_stop_the_flow(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(sink.url("/ok"))
    await publish_profiles(topics, profile)
    missing = sms_event(profile)
    del missing["data"]["to"]
    bad_value = sms_event(profile, data={"status": "teleported"})
    await produce_events(topics, [b"{not json", missing, bad_value, sms_event(profile)])
    dispatcher = await drain(topics)
    assert len(sink.at("/ok")) == 1
    reasons = sorted(d["cb-error"] for d in await dead_letters(topics))
    assert len(reasons) == 3
    assert any("to" in r for r in reasons)
    assert any("status" in r for r in reasons)
    assert metric(dispatcher, "callbacks_dead_letters_total", reason="invalid_event") == 3


async def test_skips_are_counted_not_delivered(topics: Settings, sink: Sink) -> None:
    other = make_profile(sink.url("/s"), account_id="someone-else")
    disabled = make_profile(sink.url("/s"), enabled=False)
    email_only = make_profile(
        sink.url("/s"), channel="email", events=["email.send"], body='{"s": "{{status}}"}'
    )
    strict = make_profile(
        sink.url("/s"), required_options={"enabled": True, "variables": ["dlr_status", "batch_id"]}
    )
    await publish_profiles(topics, other, disabled, email_only, strict)
    events = [
        sms_event(other),
        sms_event(disabled),
        sms_event(email_only),
        sms_event(strict),
        sms_event("no-such-profile"),
    ]
    await produce_events(topics, events)
    dispatcher = await drain(topics)
    assert sink.received == []
    for reason in (
        "other_account",
        "disabled",
        "not_subscribed",
        "required_variable_missing",
        "unknown_profile",
    ):
        assert metric(dispatcher, "callbacks_events_skipped_total", reason=reason) == 1, reason
    assert await outcomes(topics) == []
    assert ACCOUNT != "someone-else"


async def test_no_attempt_starts_after_max_age(topics: Settings, sink: Sink) -> None:
    profile = make_profile(sink.url("/old"), max_age="90s")
    await publish_profiles(topics, profile)
    stale = sms_event(profile, occurred_at="2020-01-01T00:00:00Z")
    fresh = sms_event(profile)
    await produce_events(topics, [stale, fresh])
    await drain(topics)
    assert [json.loads(r.body)["id"] for r in sink.at("/old")] == [fresh["data"]["message_id"]]
    [dead] = await dead_letters(topics)
    assert dead["cb-reason"] == "expired"
    failed = [o for o in await outcomes(topics) if o["status"] == "failed"]
    assert [o["event_id"] for o in failed] == [stale["event_id"]]


async def test_a_retry_waiting_in_a_delay_the_schedule_no_longer_names_is_delivered(
    topics: Settings, sink: Sink
) -> None:
    """Every retry topic that exists is read: shortening the schedule strands nothing."""
    old = topics.model_copy(update={"retry_schedule": "200ms,30s"})
    await ensure_topics(old)  # the 30s topic exists, as it did under the old schedule
    profile = make_profile(sink.url("/later"))
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    waiting = Job(
        json.dumps(event).encode(),
        event["data"]["message_id"].encode(),
        SourcePosition(topics.topics.source_for("sms.send"), 0, 0),
    )
    producer = make_producer(topics)
    await producer.start()
    try:
        await producer.send_and_wait(
            old.topics.retry_for(30.0),
            waiting.value,
            key=waiting.key,
            headers=waiting.retry_headers(3, "del-stranded", profile.id),
            timestamp_ms=int(time.time() * 1000) - 31_000,  # written 31 s ago: due now
        )
    finally:
        await producer.stop()
    assert topics.retry_schedule == "200ms,400ms"  # the dispatcher's: no 30s delay
    await drain(topics)
    got = sink.at("/later")
    assert len(got) == 1
    assert got[0].header("webhook-id") == "del-stranded"
