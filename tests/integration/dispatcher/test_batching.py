"""Outcome records go out in per-partition batches; each caller learns when its batch
is on the broker (dispatcher.batching, against the real broker)."""

from __future__ import annotations

import asyncio

import pytest
from callbacks.kafka import make_producer
from callbacks.settings import Settings
from dispatcher.batching import TopicBatcher

from tests.helpers import KAFKA_FACING
from tests.integration.dispatcher.helpers import read_topic

pytestmark = KAFKA_FACING


async def test_batches_carry_every_record_to_its_partition(topics: Settings) -> None:
    producer = make_producer(topics)
    await producer.start()
    try:
        topic = topics.topics.outcomes
        partitions = len(await producer.partitions_for(topic))
        batcher = TopicBatcher(producer, topic)
        acks = []
        for turn in range(5):  # several loop turns, so several batches per partition
            for i in range(200):
                n = turn * 200 + i
                acks.append(batcher.send(n % partitions, f"k{n}".encode(), f"v{n}".encode()))
            await asyncio.sleep(0)
        # A full batch is sent at once and the record starts the next one.
        big = b"x" * (100 * 1024)
        acks.extend(batcher.send(0, b"big", big) for _ in range(5))
        assert len({id(a) for a in acks}) < len(acks)  # records share their batch's ack
        await asyncio.wait_for(asyncio.gather(*acks), timeout=30)
    finally:
        await producer.stop()
    records = await read_topic(topics, topic)
    values = [r.value for r in records if r.key != b"big"]
    assert sorted(values) == sorted(f"v{n}".encode() for n in range(1000))
    assert all(r.partition == int(r.key[1:]) % partitions for r in records if r.key != b"big")
    assert [r.value for r in records if r.key == b"big"] == [big] * 5


async def test_a_failed_batch_fails_its_records(topics: Settings) -> None:
    producer = make_producer(topics)
    await producer.start()
    try:
        batcher = TopicBatcher(producer, topics.topics.outcomes)
        first = batcher.send(9999, b"k", b"v")  # no such partition: aiokafka refuses it
        second = batcher.send(9999, b"k", b"w")
        for ack in (first, second):
            with pytest.raises(AssertionError, match="Unrecognized partition"):
                await asyncio.wait_for(ack, timeout=30)
    finally:
        await producer.stop()


async def test_records_keep_their_headers_and_timestamp(topics: Settings) -> None:
    """Retry and parked records go through a batcher too: their headers (attempt, due
    time) and timestamp (their topic's delay counts from it) must reach the broker."""
    producer = make_producer(topics)
    await producer.start()
    try:
        topic = topics.topics.retry_for(topics.retry_delays_s[0])
        batcher = TopicBatcher(producer, topic)
        headers = [("cb-attempt", b"2"), ("cb-due-ms", b"1700000000100")]
        acks = [
            batcher.send(0, b"with", b"v1", headers=headers, timestamp_ms=1_700_000_000_000),
            batcher.send(0, b"without", b"v2"),
        ]
        await asyncio.wait_for(asyncio.gather(*acks), timeout=30)
    finally:
        await producer.stop()
    records = {r.key: r for r in await read_topic(topics, topic)}
    assert list(records[b"with"].headers) == headers
    assert records[b"with"].timestamp == 1_700_000_000_000
    assert list(records[b"without"].headers) == []
