"""Kafka helpers: topic creation and clients configured the way this design needs.

Latency settings are part of the design: aiokafka's default ``fetch_max_wait_ms=500``
puts event → callback p99 near 270 ms; 20 ms brings it to about 17 ms.
Idempotent producers are off because the local broker (Tansu) does not support them;
at-least-once does not need them (receivers dedupe on ``webhook-id``).
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from callbacks.logging import get_logger
from callbacks.settings import Settings

log = get_logger(__name__)

_TOPIC_EXISTS = 36

FETCH_MAX_WAIT_MS = 20
LINGER_MS = 2


async def ensure_topics(settings: Settings) -> list[str]:
    """Create every topic the system uses (Kafka in production does not auto-create).

    Returns the names created by this call; existing topics are left as they are.
    """
    names = settings.topics
    wanted = names.all()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        new = []
        for name in wanted:
            if name in existing:
                continue
            config = {"cleanup.policy": "compact"} if name == names.profiles else {}
            new.append(NewTopic(name, settings.kafka_partitions, 1, topic_configs=config))
        created: list[str] = []
        if new:
            response = await admin.create_topics(new)
            for name, code, *_ in response.topic_errors:
                if code == 0:
                    created.append(name)
                elif code != _TOPIC_EXISTS:
                    raise RuntimeError(f"could not create topic {name}: error code {code}")
        if created:
            log.info("topics_created", topics=created)
        return created
    finally:
        await admin.close()


def make_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "enable_idempotence": False,
        "acks": "all",
        "linger_ms": LINGER_MS,
        "max_batch_size": 256 * 1024,
    }
    options.update(overrides)
    return AIOKafkaProducer(**options)


def make_consumer(settings: Settings, *topic_names: str, **overrides: Any) -> AIOKafkaConsumer:
    options: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "fetch_max_wait_ms": FETCH_MAX_WAIT_MS,
        "max_poll_records": 500,
    }
    options.update(overrides)
    return AIOKafkaConsumer(*topic_names, **options)
