"""Status-code semantics, the deliver-by deadline and form bodies, through a real
dispatcher, a real broker and a loopback sink (issue 9)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs

import asyncpg
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from dispatcher import Dispatcher
from prometheus_client import CollectorRegistry
from reporter.ingest import Ingestor
from reporter.metrics import ReporterMetrics

from tests.helpers import eventually
from tests.integration.dispatcher.helpers import (
    dead_letters,
    drain,
    make_profile,
    outcomes,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Reply, Sink
from tests.integration.reporter.helpers import FAST_GROUP


async def test_transient_only_fails_a_404_at_once(topics: Settings, sink: Sink) -> None:
    sink.script("/nf", Reply(status=404))
    profile = make_profile(sink.url("/nf"), retry_on="transient_only")
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile)])
    await drain(topics)
    assert len(sink.at("/nf")) == 1
    [outcome] = await outcomes(topics)
    assert (outcome["status"], outcome["final"], outcome["http_status"]) == ("failed", True, 404)
    [dead] = await dead_letters(topics)
    assert dead["cb-reason"] == "not_retryable"


async def test_a_redirect_is_a_failure_naming_its_location(topics: Settings, sink: Sink) -> None:
    sink.script("/moved", Reply(status=302, headers={"Location": "https://elsewhere.test/new"}))
    profile = make_profile(sink.url("/moved"))
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile)])
    await drain(topics)
    assert len(sink.at("/moved")) == 3  # all_failures: the whole (short) schedule
    first = (await outcomes(topics))[0]
    assert first["status"] == "retrying"
    assert first["http_status"] == 302
    assert "https://elsewhere.test/new" in first["error"]


async def test_a_form_body_arrives_urlencoded(topics: Settings, sink: Sink) -> None:
    profile = make_profile(
        sink.url("/legacy"),
        body_type="form",
        body=None,
        form_fields={"id": "{{message_id}}", "from": "{{sender}}", "note": "a&b = c+d é"},
    )
    await publish_profiles(topics, profile)
    event = sms_event(profile, data={"sender": "Shop & Co = 100%"})
    await produce_events(topics, [event])
    await drain(topics)
    [received] = sink.at("/legacy")
    assert received.header("content-type") == "application/x-www-form-urlencoded; charset=utf-8"
    assert parse_qs(received.body.decode("ascii"), strict_parsing=True) == {
        "id": [event["data"]["message_id"]],
        "from": ["Shop & Co = 100%"],
        "note": ["a&b = c+d é"],
    }


async def test_the_deadline_drops_a_callback_whose_endpoint_stayed_down(
    settings: Settings, sink: Sink, db_pool: asyncpg.Pool
) -> None:
    # Retries every 300 ms for longer than the deadline, so the deadline ends it.
    settings = settings.model_copy(update={"retry_schedule": ",".join(["300ms"] * 20)})
    await ensure_topics(settings)
    sink.script("/down", Reply(status=503))
    account = str(uuid.uuid4())
    down = make_profile(sink.url("/down"), account_id=account, max_age="2s")
    warm = make_profile(sink.url("/ok"), account_id=account)
    await publish_profiles(settings, down, warm)
    dispatcher = Dispatcher(settings)
    task = asyncio.create_task(dispatcher.run())
    try:
        # A delivered warm-up event shows the partitions are assigned: the deadline
        # event's clock starts when it is produced, not before the group has joined.
        await produce_events(settings, [sms_event(warm, account_id=account)])
        await sink.wait_for(1, "/ok", timeout_s=20)
        event = sms_event(down, account_id=account)
        event["occurred_at"] = datetime.now(UTC).isoformat()
        await produce_events(settings, [event])

        async def expired() -> list[dict[str, str]]:
            return [d for d in await dead_letters(settings) if d["cb-reason"] == "expired"]

        await eventually(expired, timeout_s=15, what="expired dead letter")
    finally:
        dispatcher.request_stop()
        await asyncio.wait_for(task, 20)
    attempts = len(sink.at("/down"))
    assert 2 <= attempts < 20, attempts  # tried while in time, then stopped by the deadline
    final = [o for o in await outcomes(settings) if o["profile_id"] == down.id and o["final"]]
    assert [(o["status"], o["error"]) for o in final] == [("failed", "max_age exceeded")]

    # The reporter counts it as failed.
    ingestor = Ingestor(
        settings,
        db_pool,
        None,  # valid outcomes only: no dead letters to produce
        ReporterMetrics(CollectorRegistry()),
        group_id=f"{settings.topic_prefix}count",
        consumer_options=FAST_GROUP,
    )
    await ingestor.drain(timeout_s=20)
    counts = await db_pool.fetchrow(
        "SELECT sum(delivered) AS delivered, sum(failed) AS failed FROM delivery_counters"
        " WHERE profile_id = $1",
        uuid.UUID(down.id),
    )
    assert counts is not None
    assert (counts["delivered"], counts["failed"]) == (0, 1)
