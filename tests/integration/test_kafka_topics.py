"""What ``python -m callbacks init`` makes of the topics, read back from the brokers:
replication, min ISR, retention, compaction, the co-partitioning check, the idempotent
producer, and the profile cache replaying a topic that Kafka really compacted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from callbacks.kafka import (
    TopicLayoutError,
    ensure_topics,
    make_consumer,
    make_producer,
    topic_partitions,
)
from callbacks.models.profiles import seal_secrets
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from dispatcher.metrics import DispatcherMetrics
from dispatcher.profiles import ProfileCache
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from tests.helpers import KAFKA_FACING, KafkaTarget, eventually
from tests.integration.dispatcher.helpers import make_profile

pytestmark = KAFKA_FACING

DAY_MS = 86_400_000


async def topic_configs(settings: Settings, names: list[str]) -> dict[str, dict[str, str]]:
    """Each topic's configs, once a broker's answer carries every topic's own (a broker
    that has not learnt of a topic yet answers it with an error and no entries)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    out: dict[str, dict[str, str]] = {}
    try:

        async def described() -> bool:
            nonlocal out
            responses = await admin.describe_configs(
                [ConfigResource(ConfigResourceType.TOPIC, name) for name in names]
            )
            out = {}
            for response in responses:
                for code, _message, _type, name, entries in response.resources:
                    if code == 0:
                        out[name] = {entry[0]: entry[1] for entry in entries}
            return all("min.insync.replicas" in out.get(name, {}) for name in names)

        await eventually(described, timeout_s=15, what="every topic's configs described")
        return out
    finally:
        await admin.close()


async def replicas_of(settings: Settings, names: list[str]) -> dict[str, set[int]]:
    """The replica counts of each topic's partitions, once every broker's metadata
    answer lists them (a broker the admin asks may learn of new topics a moment after
    the one ``init`` waited on)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    seen: dict[str, set[int]] = {}
    try:

        async def described() -> bool:
            nonlocal seen
            topics = await admin.describe_topics(names)
            seen = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in topics}
            return all(seen.get(name) for name in names)

        await eventually(described, timeout_s=15, what="every topic's partitions described")
        return seen
    finally:
        await admin.close()


@pytest.mark.brokers("kafka")
async def test_init_creates_replicated_topics_with_retention_and_compaction(
    settings: Settings,
) -> None:
    own = settings.model_copy(update={"retry_schedule": "5s,1h", "kafka_dead_retention": "30d"})
    await ensure_topics(own)
    names = own.topics
    every = list(names.all())
    assert await replicas_of(own, every) == {name: {3} for name in every}
    configs = await topic_configs(own, every)
    assert {configs[name]["min.insync.replicas"] for name in every} == {"2"}
    profiles = configs[names.profiles]
    assert profiles["cleanup.policy"] == "compact"
    assert profiles["min.compaction.lag.ms"] == str(3_600_000)
    for source in names.sources:
        assert configs[source]["retention.ms"] == str(7 * DAY_MS)
        assert configs[source]["cleanup.policy"] == "delete"
    # A retry topic outlives the longest delay by the margin (7 days by default).
    for retry in names.retries:
        assert configs[retry]["retention.ms"] == str(3_600_000 + 7 * DAY_MS)
    assert configs[names.outcomes]["retention.ms"] == str(7 * DAY_MS)
    assert configs[names.dead]["retention.ms"] == str(30 * DAY_MS)
    assert configs[names.redeliver]["retention.ms"] == str(DAY_MS)
    ordering = configs[names.ordering]
    assert ordering["cleanup.policy"] == "compact,delete"
    assert ordering["retention.ms"] == str(2 * DAY_MS)


async def test_init_refuses_a_topic_that_breaks_co_partitioning(
    settings: Settings, kafka: KafkaTarget
) -> None:
    await ensure_topics(settings)  # three partitions each
    grown = settings.model_copy(update={"kafka_partitions": 6})
    with pytest.raises(TopicLayoutError, match=r"sms\.send has 3 partitions.*is 6"):
        await ensure_topics(grown)


@pytest.mark.brokers("kafka")
async def test_init_reports_a_topic_with_fewer_replicas_than_the_setting(
    settings: Settings,
) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(settings.topics.outcomes, 3, 1)])
    finally:
        await admin.close()
    with capture_logs() as logs:
        created = await ensure_topics(settings)
    assert settings.topics.outcomes not in created
    loud = [e for e in logs if e["event"] == "topic_under_replicated"]
    assert loud == [
        {
            "event": "topic_under_replicated",
            "log_level": "error",
            "topic": settings.topics.outcomes,
            "replicas": 1,
            "wanted": 3,
            "hint": loud[0]["hint"],
        }
    ]


@pytest.mark.brokers("kafka")
async def test_producers_are_idempotent_on_apache_kafka(topics: Settings) -> None:
    producer = make_producer(topics)
    await producer.start()
    try:
        await producer.send_and_wait(topics.topics.outcomes, b"x", key=b"k")
        manager: Any = producer._txn_manager  # aiokafka keeps the producer id here
        assert manager is not None
        assert manager.producer_id >= 0
    finally:
        await producer.stop()


async def test_profile_cache_replays_a_compacted_topic_last_record_wins(
    settings: Settings, kafka: KafkaTarget
) -> None:
    """Short segments and no compaction lag, so Kafka compacts while the test watches
    (Tansu keeps every record: the cache alone must let the last one win there)."""
    own = settings.model_copy(update={"kafka_profiles_min_compaction_lag": "0ms"})
    await ensure_topics(own)
    topic = own.topics.profiles
    if kafka.kind == "kafka":
        admin = AIOKafkaAdminClient(bootstrap_servers=own.kafka_bootstrap)
        await admin.start()
        try:
            (altered,) = await admin.alter_configs(
                [
                    ConfigResource(
                        ConfigResourceType.TOPIC,
                        topic,
                        {
                            "cleanup.policy": "compact",
                            "min.insync.replicas": "2",
                            "min.compaction.lag.ms": "0",
                            "segment.ms": "100",
                            "min.cleanable.dirty.ratio": "0.01",
                            "delete.retention.ms": "100",
                        },
                    )
                ]
            )
        finally:
            await admin.close()
        assert [r[0] for r in altered.resources] == [0], altered
    assert own.master_key is not None
    box = SecretBox(own.master_key_bytes())
    kept, dropped = make_profile("http://127.0.0.1:9/a"), make_profile("http://127.0.0.1:9/b")
    producer = make_producer(own)
    await producer.start()
    produced = 0
    try:
        for version in range(40):
            for profile in (kept, dropped):
                record = profile.model_copy(update={"title": f"v{version}"})
                value = seal_secrets(record, box.seal).model_dump_json().encode()
                await producer.send_and_wait(topic, value, key=profile.id.encode())
                produced += 1
        await producer.send_and_wait(topic, None, key=dropped.id.encode())
        produced += 1
        if kafka.kind == "kafka":
            # New segments roll on later writes; keep writing a filler key until the
            # cleaner has removed old versions.
            async def compacted() -> bool:
                nonlocal produced
                await producer.send_and_wait(topic, b"{}", key=b"filler")
                produced += 1
                return await _records_on(own, topic) < produced

            await eventually(compacted, timeout_s=60, interval_s=0.5, what="Kafka compacted")
    finally:
        await producer.stop()

    cache = ProfileCache(own, box.open, DispatcherMetrics(CollectorRegistry()))
    await cache.start()
    try:
        await asyncio.wait_for(cache.wait_ready(), 30)
        got = cache.get(kept.id)
        assert got is not None
        assert got.title == "v39"
        assert cache.get(dropped.id) is None
    finally:
        await cache.stop()


async def _records_on(settings: Settings, topic: str) -> int:
    """How many records a reader from the beginning sees now."""
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = await topic_partitions(settings, topic)
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        seen = 0
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(timeout_ms=500)
            seen += sum(len(records) for records in batch.values())
        return seen
    finally:
        await consumer.stop()
