"""A batch the broker does not take is sent again until it is (``dispatcher.batching``)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.errors import KafkaTimeoutError, MessageSizeTooLargeError
from dispatcher import batching
from dispatcher.batching import Handoff, TopicBatcher


class FakeBatch:
    def __init__(self) -> None:
        self.records: list[tuple[Any, ...]] = []

    def append(self, *, timestamp: Any, key: Any, value: Any, headers: Any) -> object:
        self.records.append((timestamp, key, value, tuple(headers)))
        return object()

    def close(self) -> None:
        pass


class FlakyProducer:
    """Refuses the first ``failures`` batches with ``error``, then takes them."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error = failures, error
        self.sent: list[list[tuple[Any, ...]]] = []

    def create_batch(self) -> FakeBatch:
        return FakeBatch()

    async def send_batch(self, batch: FakeBatch, topic: str, *, partition: int) -> Any:
        self.sent.append(batch.records)
        future = asyncio.get_running_loop().create_future()
        if len(self.sent) <= self.failures:
            future.set_exception(self.error)
        else:
            future.set_result(("ok", partition))
        return future


@pytest.fixture(autouse=True)
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batching, "RESEND_FIRST_S", 0.001)
    monkeypatch.setattr(batching, "RESEND_MAX_S", 0.002)


async def test_a_refused_batch_is_sent_again_until_acknowledged() -> None:
    producer = FlakyProducer(3, KafkaTimeoutError())
    resent: list[str] = []
    handoff = Handoff(lambda topic, _error: resent.append(topic))
    batcher = TopicBatcher(producer, "callbacks.outcomes", handoff)  # type: ignore[arg-type]
    first = batcher.send(0, b"k1", b"v1", headers=[("h", b"1")], timestamp_ms=7)
    second = batcher.send(0, b"k2", b"v2")
    seen_failing = False
    while not first.done():
        seen_failing = seen_failing or handoff.failing
        await asyncio.sleep(0.001)
    assert await first == ("ok", 0)
    assert await second == ("ok", 0)
    assert seen_failing
    assert not handoff.failing
    assert resent == ["callbacks.outcomes"] * 3
    # Every resend carries the same records, in order.
    assert len({tuple(records) for records in producer.sent}) == 1
    assert [r[1] for r in producer.sent[-1]] == [b"k1", b"k2"]


async def test_a_record_too_large_fails_its_callers_at_once() -> None:
    producer = FlakyProducer(1, MessageSizeTooLargeError())
    handoff = Handoff()
    batcher = TopicBatcher(producer, "callbacks.dead", handoff)  # type: ignore[arg-type]
    acked = batcher.send(0, b"k", b"v" * 10)
    with pytest.raises(MessageSizeTooLargeError):
        await acked
    assert len(producer.sent) == 1
    assert not handoff.failing
