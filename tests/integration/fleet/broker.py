"""The broker's side of a fault test: the consumer group, the topics and their offsets,
read with admin and consumer requests (never through the members)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from callbacks.kafka import make_consumer, topic_partitions
from callbacks.settings import Settings


async def group_state(settings: Settings, group: str) -> tuple[str, int]:
    """The consumer group's state and member count, as its coordinator says (``Unknown``
    while no coordinator answers, as on a fresh cluster before the offsets topic)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([group])
    except KafkaError:
        return "Unknown", 0
    finally:
        await admin.close()
    for response in responses:
        for described in response.groups:
            _error, group_id, state, _ptype, _protocol, members, *_ = described
            if group_id == group:
                return str(state), len(members)
    return "Unknown", 0


async def retry_topics(settings: Settings) -> list[str]:
    """Every retry topic of this namespace on the broker, named in the schedule or not."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        names = await admin.list_topics()
    finally:
        await admin.close()
    prefix = settings.topics.name("callbacks.retry.")
    return sorted(n for n in names if n.startswith(prefix))


async def end_offsets(settings: Settings, topics: list[str]) -> dict[TopicPartition, int]:
    consumer = make_consumer(settings, group_id=None)
    await consumer.start()
    try:
        tps = [tp for topic in topics for tp in await topic_partitions(settings, topic)]
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        return ends
    finally:
        await consumer.stop()


async def records_in(settings: Settings, topic: str) -> int:
    """Records ever written to ``topic`` (the sum of its end offsets)."""
    return sum((await end_offsets(settings, [topic])).values())


async def uncommitted(settings: Settings, group: str) -> int:
    """Records of the source and retry topics past the group's committed offsets."""
    topics = [settings.topics.source_for("sms.send"), *await retry_topics(settings)]
    ends = await end_offsets(settings, topics)
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=3000)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(group, partitions=list(ends))
    finally:
        await admin.close()
    behind = 0
    for tp, end in ends.items():
        at = committed.get(tp)
        offset = at.offset if at is not None and at.offset >= 0 else 0
        behind += max(end - offset, 0)
    return behind
