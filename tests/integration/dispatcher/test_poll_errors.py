"""A coordinator error handed to a poll is logged and the member polls again."""

from __future__ import annotations

from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from callbacks.settings import Settings
from structlog.testing import capture_logs

from tests.integration.dispatcher.helpers import (
    drain,
    make_profile,
    metric,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Sink

pytestmark = pytest.mark.integration

EVENTS = 20


async def test_a_poll_that_raises_stops_no_member(
    topics: Settings, sink: Sink, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What aiokafka's group coordinator hands to the next poll when its heartbeat meets
    # a connection that just closed under uvloop: a RuntimeError, once.
    getmany = AIOKafkaConsumer.getmany
    raised: list[str] = []

    async def once_broken(self: AIOKafkaConsumer, *partitions: Any, **options: Any) -> Any:
        if not raised and self._group_id is not None:
            raised.append(self._group_id)
            raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")
        return await getmany(self, *partitions, **options)

    monkeypatch.setattr(AIOKafkaConsumer, "getmany", once_broken)
    profile = make_profile(sink.url("/poll"))
    await publish_profiles(topics, profile)
    events = [sms_event(profile) for _ in range(EVENTS)]
    await produce_events(topics, events)
    with capture_logs() as logs:
        dispatcher = await drain(topics)

    assert raised
    assert len(sink.at("/poll")) == EVENTS
    assert metric(dispatcher, "callbacks_dispatcher_internal_errors_total", stage="poll") == 1
    assert [e["error"] for e in logs if e["event"] == "consumer_poll_failed"] == [
        "RuntimeError('unable to perform operation on <TCPTransport closed=True>')"
    ]
