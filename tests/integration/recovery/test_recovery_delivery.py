"""Bulk recovery end to end: profile-api publishes, a real dispatcher delivers again to
a sink over loopback; only the failed callbacks of the window arrive a second time."""

from __future__ import annotations

import collections
import json

import asyncpg
from callbacks.settings import Settings

from tests.helpers import KAFKA_FACING
from tests.integration.api.helpers import Api
from tests.integration.dispatcher.helpers import drain, outcomes, produce_events, sms_event
from tests.integration.dispatcher.sink import Sink
from tests.integration.recovery.helpers import Seeded, create_profile, seed
from tests.integration.recovery.test_recovery_api import at, finished, window

pytestmark = KAFKA_FACING


async def test_recovered_failures_reach_the_endpoint_again_with_their_webhook_id(
    api: Api, pool: asyncpg.Pool, recovery_settings: Settings
) -> None:
    sink = Sink()
    await sink.start()
    try:
        profile = await create_profile(api, sink.url("/recovered"))
        events = [
            sms_event(profile, account_id=api.account_id, data={"status": "sent"}) for _ in range(6)
        ]
        await produce_events(recovery_settings, events)
        await drain(recovery_settings)
        first = await outcomes(recovery_settings)
        assert [o["status"] for o in first] == ["delivered"] * 6

        # The delivery log as the reporter would have it: three of them ended failed.
        assert api.account_id is not None
        rows = [
            Seeded(
                o["delivery_id"],
                "failed" if i % 2 else "delivered",
                at(i + 1),
                attempt=o["attempt"],
                source=(o["source_topic"], o["source_partition"], o["source_offset"]),
                event_id=o["event_id"],
            )
            for i, o in enumerate(first)
        ]
        await seed(pool, api.account_id, profile, rows)
        failed = {r.delivery_id for r in rows if r.status == "failed"}

        reply = await api.call("POST", f"/v1/callback-profiles/{profile}/recover", json=window())
        assert reply.status == 202, reply.body
        assert reply.body["total"] == 3
        assert (await finished(api, reply.body["id"]))["done"] == 3
        await drain(recovery_settings)

        calls = sink.at("/recovered")
        per_id = collections.Counter(c.header("webhook-id") for c in calls)
        assert per_id == {r.delivery_id: 2 if r.delivery_id in failed else 1 for r in rows}
        again = [json.loads(c.body)["id"] for c in calls[6:]]
        assert len(again) == 3
        last = await outcomes(recovery_settings)
        recovered = [o for o in last if o["delivery_id"] in failed and o["attempt"] == 2]
        assert sorted(o["status"] for o in recovered) == ["delivered"] * 3
    finally:
        await sink.stop()
