"""Fixtures for dispatcher tests: a sink, profiles sealed onto the topic, events, runs."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from callbacks.kafka import make_consumer, make_producer, topic_partitions
from callbacks.models.profiles import ProfileRecord, SigningSecret, seal_secrets
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from callbacks.signing import generate_secret
from callbacks.simulator.events import Gateway
from dispatcher import Dispatcher

from tests.integration.dispatcher.sink import Sink

ACCOUNT = "acc-1"


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = Sink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def make_profile(url: str, **overrides: Any) -> ProfileRecord:
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "account_id": ACCOUNT,
        "title": "test profile",
        "channel": "sms",
        "events": ["sms.send"],
        "method": "POST",
        "url": url,
        "body_type": "json",
        "body": '{"id": "{{message_id}}", "status": "{{status}}", "to": "{{to}}"}',
        "created_at": now,
        "updated_at": now,
        "signing_secrets": [SigningSecret(secret=generate_secret(), created_at=now)],
    }
    fields.update(overrides)
    return ProfileRecord.model_validate(fields)


# Events come from the gateway simulator's builders: one source of realistic
# envelopes for the demo, the benchmark and these tests.
_GATEWAY_RNG = random.Random(20261125)


# These tests reason about which variables an event carries, so they keep the fields
# below (the builders' values) and leave every other optional field absent.
_SMS_FIELDS = ("message_id", "to", "sender", "status", "dlr_status", "status_code")


def sms_event(profile: ProfileRecord | str, **overrides: Any) -> dict[str, Any]:
    """A ``sms.send`` delivery receipt for ``profile``; ``data=`` updates its data, any
    other keyword replaces an envelope field."""
    profile_id = profile if isinstance(profile, str) else profile.id
    gateway = Gateway(_GATEWAY_RNG, account_id=ACCOUNT, profiles={"*": profile_id})
    built = gateway.event("sms.send")
    data = {name: built.data[name] for name in _SMS_FIELDS}
    data.update(overrides.pop("data", {}))
    event: dict[str, Any] = {**built.value, "ref": "order_123", "data": data}
    event.update(overrides)
    return event


async def publish_profiles(
    settings: Settings, *profiles: ProfileRecord, tombstones: Iterable[str] = ()
) -> None:
    box = SecretBox(settings.master_key_bytes())
    producer = make_producer(settings)
    await producer.start()
    try:
        for profile in profiles:
            sealed = seal_secrets(profile, box.seal)
            await producer.send_and_wait(
                settings.topics.profiles, sealed.model_dump_json().encode(), key=profile.id.encode()
            )
        for profile_id in tombstones:
            await producer.send_and_wait(settings.topics.profiles, None, key=profile_id.encode())
    finally:
        await producer.stop()


async def produce(settings: Settings, topic: str, values: Iterable[bytes | dict[str, Any]]) -> None:
    producer = make_producer(settings)
    await producer.start()
    try:
        futures = []
        for value in values:
            raw = value if isinstance(value, bytes) else orjson.dumps(value)
            key = None
            if isinstance(value, dict):
                key = str(value.get("data", {}).get("message_id", "")).encode() or None
            futures.append(await producer.send(topic, raw, key=key))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def produce_events(
    settings: Settings, events: Iterable[dict[str, Any] | bytes], topic: str | None = None
) -> None:
    await produce(settings, topic or settings.topics.source_for("sms.send"), events)


async def read_topic(settings: Settings, topic: str) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record currently in ``topic`` (all partitions, from the beginning)."""
    consumer: AIOKafkaConsumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(settings, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[ConsumerRecord[bytes, bytes]] = []
        # The local broker's "latest" offset can lag behind the last batch of a
        # partition, so reaching it is not the end: read on until a poll comes back empty.
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                out.extend(records)
            if not batch and all([await consumer.position(tp) >= ends[tp] for tp in tps]):
                return out
    finally:
        await consumer.stop()


async def outcomes(settings: Settings) -> list[dict[str, Any]]:
    records = await read_topic(settings, settings.topics.outcomes)
    return sorted((orjson.loads(r.value) for r in records), key=lambda o: o["attempted_at"])


async def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    records = await read_topic(settings, settings.topics.dead)
    return [{"value": r.value, **{k: v.decode() for k, v in r.headers}} for r in records]


async def drain(settings: Settings, *, timeout_s: float = 30.0) -> Dispatcher:
    """Run a dispatcher until everything is delivered, retried and committed."""
    dispatcher = Dispatcher(settings)
    await asyncio.wait_for(dispatcher.run(until_idle=True), timeout_s)
    return dispatcher


def metric(dispatcher: Dispatcher, name: str, **labels: str) -> float:
    value = dispatcher.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The session settings, with a short group session so joins take about a second."""
    return settings.model_copy(update={"consumer_session_timeout": "2s"})
