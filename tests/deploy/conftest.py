"""The running local stack the metric tests scrape: its own PostgreSQL and broker on
free ports, the three services as processes (as ``make run`` starts them), and one
callback delivered end to end so labelled metrics carry samples."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from callbacks.kafka import make_producer
from callbacks.topics import SMS
from callbacks_dev.devstack.processes import free_port
from callbacks_dev.devstack.stack import LocalStack, StackConfig

from tests.deploy.helpers import RunningStack, Sink
from tests.helpers import eventually


@pytest.fixture(scope="package")
async def sink() -> AsyncIterator[Sink]:
    port = free_port()
    received: list[bytes] = []

    async def record(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield Sink(url=f"http://127.0.0.1:{port}/hooks/sms", received=received)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="package")
async def running_stack(sink: Sink) -> AsyncIterator[RunningStack]:
    stack = LocalStack(StackConfig.on_free_ports())
    try:
        await stack.start_infrastructure()
        started = await stack.start_services()
        running = RunningStack(stack, started, sink)
        if not running.missing:
            await _deliver_one_callback(running)
        yield running
    finally:
        await asyncio.to_thread(stack.stop)
        shutil.rmtree(stack.workdir, ignore_errors=True)


async def _api(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> dict[str, Any]:
    async with session.request(method, url, **kwargs) as response:
        body = await response.text()
        assert response.status < 300, f"{method} {url}: {response.status} {body}"
        result: dict[str, Any] = orjson.loads(body)
        return result


async def _deliver_one_callback(running: RunningStack) -> None:
    """Account → profile → one sms.send event → a 2xx at the sink; plus one event for an
    unknown profile (skipped) and one unreadable record (dead letter), so the labelled
    delivery metrics all carry samples."""
    stack = running.stack
    account = await stack.create_account(f"deploy-{uuid.uuid4().hex[:8]}")
    profile_body = {
        "title": "deploy metrics check",
        "channel": "sms",
        "events": ["sms.send"],
        "method": "POST",
        "url": running.sink.url,
        "body_type": "json",
        "body": '{"id": "{{message_id}}", "status": "{{status}}"}',
    }
    async with aiohttp.ClientSession(headers={"api-key": account["api_key"]}) as session:
        profile = await _api(
            session, "POST", f"{stack.api_url}/v1/callback-profiles", json=profile_body
        )

    async def cached() -> bool:
        page = await running.scrape("dispatcher")
        return page.values.get("callbacks_profiles_cached", 0.0) >= 1

    await eventually(cached, timeout_s=20, what="the dispatcher caching the profile")

    def event(profile_id: str) -> bytes:
        message_id = uuid.uuid4().hex
        return orjson.dumps(
            {
                "event_id": uuid.uuid4().hex,
                "event": "sms.send",
                "account_id": account["id"],
                "callback_profile_id": profile_id,
                "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                "data": {"message_id": message_id, "to": "+919876543210", "status": "delivered"},
            }
        )

    producer = make_producer(stack.settings())
    await producer.start()
    try:
        topic = stack.settings().topics.name(SMS)
        await producer.send_and_wait(topic, event(profile["id"]), key=b"m1")
        await producer.send_and_wait(topic, event(str(uuid.uuid4())), key=b"m2")
        await producer.send_and_wait(topic, b"{not json", key=b"m3")
    finally:
        await producer.stop()

    async def settled() -> list[str]:
        """What the traffic has not shown yet: the delivery, the skip, the dead letter,
        the lag gauge, the reporter storing the outcome."""
        dispatcher = await running.scrape("dispatcher")
        reporter = await running.scrape("reporter")
        waiting = [
            name
            for name in (
                "callbacks_deliveries_total",
                "callbacks_events_skipped_total",
                "callbacks_dead_letters_total",
                "callbacks_consumer_lag",
            )
            if not dispatcher.values.get(name) and name not in dispatcher.labels
        ]
        if not running.sink.received:
            waiting.append("a request at the sink")
        if not reporter.values.get("callbacks_outcomes_ingested_total"):
            waiting.append("callbacks_outcomes_ingested_total")
        return waiting

    async def done() -> bool:
        return not await settled()

    try:
        await eventually(done, timeout_s=30, what="the test traffic")
    except AssertionError as exc:
        raise AssertionError(f"still waiting for {await settled()}") from exc
