"""Helpers of the WhatsApp and chatbot end-to-end tests: a sink keeping raw request targets,
profiles of a channel at the sink, simulator events for a profile, and producing them as
a gateway does."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiohttp import web
from callbacks.kafka import make_producer
from callbacks.models.profiles import ProfileRecord
from callbacks.settings import Settings
from callbacks_dev.simulator.events import Gateway, GatewayEvent

from tests.integration.dispatcher.helpers import make_profile
from tests.integration.dispatcher.sink import Received, Sink


class RawSink(Sink):
    """The dispatcher tests' sink, also keeping each request's target exactly as it
    arrived on the wire (aiohttp's ``query_string`` is already decoded), by webhook-id."""

    def __init__(self) -> None:
        super().__init__()
        self.raw_targets: dict[str, str] = {}

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.raw_targets[request.headers.get("webhook-id", "")] = request.raw_path
        return await super()._handle(request)

    def raw_query(self, got: Received) -> str:
        target = self.raw_targets[got.header("webhook-id") or ""]
        return target.partition("?")[2]


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
