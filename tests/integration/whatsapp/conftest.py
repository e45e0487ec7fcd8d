"""Fixtures for the WhatsApp and chatbot end-to-end tests: the dispatcher runs in
process in drain mode against the real broker, profiles are sealed onto the test's
profile topic, events come from the simulator's builders, callbacks land in a sink."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from callbacks.kafka import make_producer
from callbacks.models.profiles import ProfileRecord
from callbacks.settings import Settings
from callbacks.simulator.events import Gateway, GatewayEvent

from tests.integration.dispatcher.conftest import ACCOUNT, make_profile
from tests.integration.dispatcher.sink import Sink


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The session settings, with a short group session so joins take about a second."""
    return settings.model_copy(update={"consumer_session_timeout": "2s"})


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = Sink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
def gateway() -> Gateway:
    return Gateway(random.Random(8), account_id=ACCOUNT, profiles={"*": "unset"})


def profile(sink: Sink, path: str, channel: str, events: list[str], **fields: Any) -> ProfileRecord:
    """A saved profile of ``channel`` delivering ``events`` to ``path`` at the sink."""
    url = fields.pop("url", None) or sink.url(path)
    fields.setdefault("body_type", None)
    fields.setdefault("body", None)
    return make_profile(url, channel=channel, events=events, title=f"{channel} {path}", **fields)


def event(
    gateway: Gateway,
    to: ProfileRecord,
    name: str,
    overrides: dict[str, Any] | None = None,
    *,
    drop: tuple[str, ...] = (),
) -> GatewayEvent:
    """A realistic ``name`` event for profile ``to``, with its data adjusted."""
    built = gateway.event(name, overrides, drop=drop)
    return built._replace(value={**built.value, "callback_profile_id": to.id})


async def produce(settings: Settings, events: Iterable[GatewayEvent]) -> None:
    """Produce like a gateway: each to its source topic, keyed by its message id."""
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for built in events:
            key, value = built.encode()
            topic = settings.topics.name(built.topic)
            futures.append(await producer.send(topic, value, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()
