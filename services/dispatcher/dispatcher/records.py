"""The records a callback leaves behind, handed to the broker.

Each method hands one record to the producer and returns its acknowledgement: an
outcome (``dispatcher.outcome_record``), a retry or parked record, a dead letter. A
source record is done, and its offset committable, only once every acknowledgement its
callback got has resolved (``dispatcher.worker``). Outcomes, retry and parked records
and the ordering state go through one ``TopicBatcher`` per topic (a batch per partition,
sent again until the broker takes it); dead letters are rare and go one by one.

Partition *i* of a source goes to partition *i* of the retry and outcome topics: under
co-partitioning that is the partition the key hashes to anyway, so it is chosen
directly rather than hashed once per record.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import MessageSizeTooLargeError
from callbacks.logging import get_logger
from callbacks.models.events import Event
from callbacks.models.outcomes import OutcomeStatus
from callbacks.sender import AttemptResult
from callbacks.settings import Settings

from dispatcher.batching import Handoff, TopicBatcher
from dispatcher.endpoints.parking import RetryLanes, park
from dispatcher.jobs import Job
from dispatcher.metrics import DispatcherMetrics
from dispatcher.outcome_record import outcome_record

log = get_logger(__name__)

# Dead-letter reasons that are the dispatcher's business, not the endpoint's: logged.
_LOGGED_DEAD_REASONS = frozenset({"invalid_event", "internal_error", "too_large", "kafka_timeout"})


class RecordWriter:
    """Hands a callback's records to the broker; every method returns the record's ack."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        settings: Settings,
        metrics: DispatcherMetrics,
        handoff: Handoff,
    ) -> None:
        self._producer = producer
        self._topics = settings.topics
        self._schedule = settings.retry_delays_s
        self._metrics = metrics
        self._handoff = handoff
        self._max_record_bytes = settings.kafka_max_record_bytes
        self._partition_counts: dict[str, int] = {}
        self._lanes = RetryLanes()  # where parked callbacks avoid waiting behind retries
        self._outcomes = TopicBatcher(
            producer, settings.topics.outcomes, handoff, max_record_bytes=self._max_record_bytes
        )
        # Retry and parked records too, one batcher per retry topic: beside a throttled
        # host, callbacks are parked at the rate they arrive.
        self._retries: dict[str, TopicBatcher] = {}
        # The per-message ordering state's topic (``dispatcher.ordering``).
        self.ordering_state = TopicBatcher(producer, settings.topics.ordering, handoff)

    async def outcome(
        self,
        job: Job,
        event: Event,
        profile_id: str,
        delivery_id: str,
        *,
        status: OutcomeStatus,
        result: AttemptResult,
        attempted_at: datetime,
        final: bool = True,
        latency: bool = True,
    ) -> Awaitable[Any]:
        """The outcome of one attempt; ``latency`` False: no request was made, so the
        record's ``latency_ms`` is null."""
        record = outcome_record(
            job,
            event,
            profile_id=profile_id,
            delivery_id=delivery_id,
            status=status,
            final=final,
            result=result,
            attempted_at=attempted_at,
            latency=latency,
        )
        partition = await self._partition(self._outcomes.topic, job.source.partition)
        return self._outcomes.send(partition, delivery_id.encode(), record)

    async def ending(
        self,
        job: Job,
        event: Event,
        profile_id: str,
        delivery_id: str,
        *,
        status: OutcomeStatus,
        error: str,
    ) -> Awaitable[Any]:
        """The final outcome of a callback that ends without a request (``failed`` for
        an internal reason, ``cancelled``, ``stale``): no HTTP status, ``latency_ms``
        null, ``error`` saying why."""
        return await self.outcome(
            job,
            event,
            profile_id,
            delivery_id,
            status=status,
            result=AttemptResult(None, (), b"", 0.0, error),
            attempted_at=datetime.now(UTC),
            latency=False,
        )

    async def retry(
        self,
        job: Job,
        profile_id: str,
        delivery_id: str,
        delay_s: float,
        attempt: int,
        *,
        due_ms: int | None = None,
    ) -> Awaitable[Any]:
        """Onto the retry topic of ``delay_s`` as attempt ``attempt`` (due at ``due_ms``
        if given, else ``delay_s`` from now)."""
        topic = self._topics.retry_for(delay_s)
        partition = await self._partition(topic, job.source.partition)
        now_ms = int(time.time() * 1000)
        batcher = self._retries.get(topic)
        if batcher is None:
            batcher = self._retries[topic] = TopicBatcher(
                self._producer, topic, self._handoff, max_record_bytes=self._max_record_bytes
            )
        acked = batcher.send(
            partition,
            job.key,
            job.value,
            headers=job.retry_headers(attempt, delivery_id, profile_id, due_ms),
            timestamp_ms=now_ms,
        )
        self._lanes.wrote(delay_s, job.source.partition, due_ms or now_ms + int(delay_s * 1000))
        return acked

    async def park(
        self, job: Job, profile_id: str, delivery_id: str, wait_s: float | None
    ) -> Awaitable[Any]:
        """Onto a retry topic, due in about ``wait_s``, same attempt number
        (``endpoints.parking.park`` picks the topic and the due time)."""
        lanes, partition = self._lanes, job.source.partition
        delay, due_ms = park(
            self._schedule,
            wait_s,
            int(time.time() * 1000),
            lambda delay: lanes.latest(delay, partition),
        )
        return await self.retry(job, profile_id, delivery_id, delay, job.attempt, due_ms=due_ms)

    async def dead(self, job: Job, reason: str, error: str) -> Awaitable[Any]:
        """Onto the dead letter topic with why (``reason``, a bounded kind) and where the
        record sits; without its value if the value is what the broker refuses."""
        self._metrics.dead_letters.labels(reason=reason).inc()
        if reason in _LOGGED_DEAD_REASONS:
            log.warning(
                "dead_lettered",
                reason=reason,
                error=error,
                topic=job.source.topic,
                partition=job.source.partition,
                offset=job.source.offset,
            )
        headers = job.dead_headers(reason, error)
        try:
            return await self._producer.send(  # type: ignore[no-any-return]
                self._topics.dead, job.value, key=job.key, headers=headers
            )
        except MessageSizeTooLargeError:
            # The value itself is what the broker refuses: the headers keep where the
            # original sits, so it can still be found (and replayed) from there.
            return await self._producer.send(  # type: ignore[no-any-return]
                self._topics.dead, None, key=job.key, headers=headers
            )

    async def drain(self) -> None:
        """Wait until every record handed to a batcher is acknowledged (shutdown)."""
        for batcher in (*self._retries.values(), self._outcomes, self.ordering_state):
            await batcher.drain()

    async def _partition(self, topic: str, source_partition: int) -> int:
        count = self._partition_counts.get(topic)
        if count is None:
            count = len(await self._producer.partitions_for(topic))
            self._partition_counts[topic] = count
        return source_partition % count
