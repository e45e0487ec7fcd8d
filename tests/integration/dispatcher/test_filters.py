"""Filters on the real broker: a filtered event is skipped and counted (contract §3b)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from callbacks.models.outcomes import RedeliverRequest
from callbacks.models.profiles import Filter
from callbacks.settings import Settings

from tests.helpers import KAFKA_FACING
from tests.integration.dispatcher.helpers import (
    drain,
    make_profile,
    metric,
    outcomes,
    produce,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Sink

pytestmark = KAFKA_FACING

STATUSES = ["delivered", "failed", "sent", "undelivered", "expired", "failed"]


async def test_profile_with_status_filter_receives_only_failures(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(
        sink.url("/failures"),
        filters=[Filter.model_validate({"variable": "status", "in": ["failed", "undelivered"]})],
    )
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile, data={"status": s}) for s in STATUSES])
    dispatcher = await drain(topics)

    got = sorted(json.loads(r.body)["status"] for r in sink.at("/failures"))
    assert got == ["failed", "failed", "undelivered"]
    assert metric(dispatcher, "callbacks_events_skipped_total", reason="filtered") == 3
    assert metric(dispatcher, "callbacks_deliveries_total", outcome="delivered") == 3


async def test_a_redelivery_the_filters_now_exclude_ends_cancelled(
    topics: Settings, sink: Sink
) -> None:
    """A pending callback (here a redelivery) whose event the profile's filters now
    exclude ends with a ``cancelled`` outcome: never silently (contract §6)."""
    profile = make_profile(sink.url("/narrowed"))
    await publish_profiles(topics, profile)
    event = sms_event(profile, data={"status": "sent"})
    await produce_events(topics, [event])
    await drain(topics)
    [first] = await outcomes(topics)
    assert first["status"] == "delivered"

    narrowed = profile.model_copy(
        update={
            "filters": [Filter.model_validate({"variable": "status", "equals": "failed"})],
            "updated_at": datetime.now(UTC),
        }
    )
    await publish_profiles(topics, narrowed)
    request = RedeliverRequest(
        delivery_id=first["delivery_id"],
        event_id=event["event_id"],
        account_id=event["account_id"],
        profile_id=profile.id,
        source_topic=first["source_topic"],
        source_partition=first["source_partition"],
        source_offset=first["source_offset"],
        attempt=2,
        requested_at=datetime.now(UTC),
    )
    await produce(topics, topics.topics.redeliver, [request.model_dump_json().encode()])
    await drain(topics)
    last = (await outcomes(topics))[-1]
    assert (last["attempt"], last["status"], last["final"]) == (2, "cancelled", True)
    assert "filters" in last["error"]
    assert len(sink.at("/narrowed")) == 1
