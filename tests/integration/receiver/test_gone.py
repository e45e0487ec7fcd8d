"""A profile disabled by ``410 Gone``, end to end: dispatcher → outcome → reporter →
database and outbox → profile-api relay → profile topic → dispatcher cache, whose next
events are then skipped; one email; PATCH ``enabled: true`` clears the reason."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from email.message import EmailMessage
from typing import Any

import aiohttp
import pytest
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from dispatcher import Dispatcher
from reporter.service import Reporter

from tests.helpers import eventually
from tests.integration.api.helpers import ADMIN, Api, start_app
from tests.integration.dispatcher.helpers import metric, produce_events, sms_event
from tests.integration.dispatcher.sink import Reply, Sink
from tests.integration.reporter.helpers import Mailbox

RECIPIENT = "owner@customer.test"


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None], stop: Any) -> AsyncIterator[None]:
    """Run a service's ``run()`` as a task; stop it the way its signal handler would."""
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        stop()
        await asyncio.wait_for(task, 20)


@pytest.fixture
async def stack_settings(topics: Settings, smtp_server: tuple[Mailbox, int]) -> Settings:
    return topics.model_copy(
        update={
            "smtp_port": smtp_server[1],
            "reporter_metrics_port": free_port(),
            "outbox_poll_interval": "5s",  # the NOTIFY wake-up must do the work
        }
    )


async def test_410_disables_the_profile_and_its_next_events_are_skipped(
    stack_settings: Settings, sink: Sink, smtp_server: tuple[Mailbox, int]
) -> None:
    settings = stack_settings
    mailbox = smtp_server[0]
    sink.script("/gone", Reply(status=410, body=b"gone"))
    runner, base = await start_app(settings)
    dispatcher = Dispatcher(settings)
    reporter = Reporter(settings)
    try:
        async with aiohttp.ClientSession() as session:
            admin = Api(base, session)
            reply = await admin.call("POST", "/v1/accounts", json={"name": "g"}, headers=ADMIN)
            api = Api(base, session, reply.body["api_key"], reply.body["id"])
            reply = await api.call(
                "PUT",
                "/v1/callback-reports/settings",
                json={
                    "enabled": False,
                    "frequency": "daily",
                    "recipients": [RECIPIENT],
                    "timezone": "UTC",
                },
            )
            assert reply.status == 200, reply.body
            reply = await api.call(
                "POST",
                "/v1/callback-profiles",
                json={
                    "title": "Gone endpoint",
                    "channel": "sms",
                    "events": ["sms.send"],
                    "url": sink.url("/gone"),
                    "body_type": "json",
                    "body": '{"id": "{{message_id}}"}',
                },
            )
            assert reply.status == 201, reply.body
            profile_id = reply.body["id"]
            account = api.account_id
            assert account is not None

            async with (
                running(dispatcher.run(), dispatcher.request_stop),
                running(reporter.run(), reporter.request_stop),
            ):

                async def cached() -> bool:
                    cache = dispatcher.cache
                    return cache is not None and cache.get(profile_id) is not None

                await eventually(cached, timeout_s=20, what="profile in the dispatcher cache")
                await produce_events(settings, [sms_event(profile_id, account_id=account)])
                await sink.wait_for(1, "/gone")

                async def disabled() -> dict[str, Any] | None:
                    body = (await api.call("GET", f"/v1/callback-profiles/{profile_id}")).body
                    return body if body["disabled_reason"] else None

                shown = await eventually(disabled, timeout_s=20, what="profile disabled")
                assert shown is not None
                assert shown["enabled"] is False
                assert shown["disabled_reason"] == "endpoint_gone"
                assert shown["disabled_at"]

                async def cache_disabled() -> bool:
                    assert dispatcher.cache is not None
                    record = dispatcher.cache.get(profile_id)
                    return record is not None and record.disabled_reason == "endpoint_gone"

                await eventually(cache_disabled, timeout_s=5, what="dispatcher learns it")
                await produce_events(settings, [sms_event(profile_id, account_id=account)])

                async def skipped() -> bool:
                    return (
                        metric(dispatcher, "callbacks_events_skipped_total", reason="disabled") == 1
                    )

                await eventually(skipped, what="second event skipped")
                assert len(sink.at("/gone")) == 1

                def ours() -> list[EmailMessage]:
                    return [m for m in mailbox.messages if "Gone endpoint" in str(m["Subject"])]

                async def mailed() -> list[EmailMessage]:
                    return ours()

                [message] = await eventually(mailed, what="disable email")
                assert "endpoint returned 410 Gone" in str(message["Subject"])
                assert RECIPIENT in str(message["To"])

                # The delivery log shows the attempt that caused it.
                log = await api.call("GET", "/v1/deliveries", params={"profile_id": profile_id})
                assert log.status == 200, log.body
                assert log.body["items"][0]["http_status"] == 410

                # Re-enabling clears the reason.
                reply = await api.call(
                    "PATCH", f"/v1/callback-profiles/{profile_id}", json={"enabled": True}
                )
                assert reply.status == 200, reply.body
                assert reply.body["enabled"] is True
                assert reply.body["disabled_reason"] is None
                assert reply.body["disabled_at"] is None
            assert len(ours()) == 1  # once
    finally:
        await runner.cleanup()
