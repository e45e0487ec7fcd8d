"""No callback ends silently, end to end: profile-api → outbox → profile topic →
dispatcher cache; dispatcher → outcomes → reporter → delivery log and counters."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import aiohttp
import asyncpg
import pytest
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from dispatcher import Dispatcher
from reporter.service import Reporter

from tests.helpers import eventually
from tests.integration.api.helpers import ADMIN, Api, start_app
from tests.integration.dispatcher.helpers import produce_events, sms_event
from tests.integration.dispatcher.sink import Reply, Sink

pytestmark = pytest.mark.integration

PENDING = 5


@contextlib.asynccontextmanager
async def running(coro: Coroutine[Any, Any, None], stop: Any) -> AsyncIterator[None]:
    task = asyncio.create_task(coro)
    try:
        yield
    finally:
        stop()
        await asyncio.wait_for(task, 20)


@contextlib.asynccontextmanager
async def stack(settings: Settings) -> AsyncIterator[tuple[Api, Dispatcher]]:
    """The API with a fresh account, a dispatcher and a reporter, all running."""
    runner, base = await start_app(settings)
    dispatcher = Dispatcher(settings)
    reporter = Reporter(settings)
    try:
        async with aiohttp.ClientSession() as session:
            admin = Api(base, session)
            reply = await admin.call("POST", "/v1/accounts", json={"name": "n"}, headers=ADMIN)
            api = Api(base, session, reply.body["api_key"], reply.body["id"])
            async with (
                running(dispatcher.run(), dispatcher.request_stop),
                running(reporter.run(), reporter.request_stop),
            ):
                await eventually(
                    lambda: _ready(dispatcher), timeout_s=20, what="dispatcher cache ready"
                )
                yield api, dispatcher
    finally:
        await runner.cleanup()


async def _ready(dispatcher: Dispatcher) -> bool:
    return dispatcher.cache is not None and dispatcher.cache.ready.is_set()


async def create_profile(api: Api, url: str) -> str:
    reply = await api.call(
        "POST",
        "/v1/callback-profiles",
        json={
            "title": "Order status",
            "channel": "sms",
            "events": ["sms.send"],
            "url": url,
            "body_type": "json",
            "body": '{"id": "{{message_id}}"}',
        },
    )
    assert reply.status == 201, reply.body
    return str(reply.body["id"])


@pytest.fixture
async def stack_settings(topics: Settings) -> Settings:
    own = topics.model_copy(
        update={
            "reporter_metrics_port": free_port(),
            "consumer_session_timeout": "2s",
            "retry_schedule": "3s,3s",  # long enough to disable the profile in between
        }
    )
    await ensure_topics(own)  # the 3s retry topic (Apache Kafka creates none on produce)
    return own


async def test_a_profile_created_and_used_at_once_delivers_its_first_event(
    stack_settings: Settings, sink: Sink
) -> None:
    async with stack(stack_settings) as (api, _dispatcher):
        profile_id = await create_profile(api, sink.url("/new"))
        await produce_events(stack_settings, [sms_event(profile_id, account_id=api.account_id)])
        await sink.wait_for(1, "/new", timeout_s=10)

        async def logged() -> list[dict[str, Any]]:
            log = await api.call("GET", "/v1/deliveries", params={"profile_id": profile_id})
            return list(log.body["items"])

        [item] = await eventually(logged, timeout_s=20, what="the delivery in the log")
        assert (item["status"], item["attempt"]) == ("delivered", 1)


async def test_disabling_a_profile_cancels_its_pending_retries_in_the_delivery_log(
    stack_settings: Settings, sink: Sink
) -> None:
    settings = stack_settings
    sink.script("/down", Reply(status=500))
    async with stack(settings) as (api, dispatcher):
        profile_id = await create_profile(api, sink.url("/down"))

        async def cached() -> bool:
            assert dispatcher.cache is not None
            return dispatcher.cache.get(profile_id) is not None

        await eventually(cached, timeout_s=10, what="profile in the dispatcher cache")
        events = [sms_event(profile_id, account_id=api.account_id) for _ in range(PENDING)]
        await produce_events(settings, events)
        await sink.wait_for(PENDING, "/down", timeout_s=10)  # first attempts failed

        reply = await api.call(
            "PATCH", f"/v1/callback-profiles/{profile_id}", json={"enabled": False}
        )
        assert reply.status == 200, reply.body

        async def cancelled() -> list[dict[str, Any]]:
            log = await api.call(
                "GET", "/v1/deliveries", params={"profile_id": profile_id, "status": "cancelled"}
            )
            assert log.status == 200, log.body
            items: list[dict[str, Any]] = log.body["items"]
            return items if len(items) == PENDING else []

        items = await eventually(cancelled, timeout_s=20, what="every pending retry cancelled")
        assert {(i["status"], i["final"], i["attempt"]) for i in items} == {("cancelled", True, 2)}
        assert {i["error"] for i in items} == {"profile disabled"}
        detail = await api.call("GET", f"/v1/deliveries/{items[0]['delivery_id']}")
        assert [a["status"] for a in detail.body["attempts"]] == ["retrying", "cancelled"]
    assert len(sink.at("/down")) == PENDING  # no second attempt was made

    assert settings.database_url is not None
    conn = await asyncpg.connect(settings.database_url.get_secret_value())
    try:
        counted = await conn.fetchrow(
            "SELECT sum(cancelled) AS cancelled, sum(failed) AS failed FROM delivery_counters"
            " WHERE profile_id = $1::uuid",
            profile_id,
        )
    finally:
        await conn.close()
    assert (counted["cancelled"], counted["failed"]) == (PENDING, 0)
