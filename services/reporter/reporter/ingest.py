"""Consume ``callbacks.outcomes`` in batches into the delivery log.

Order per batch: parse every record (a malformed one goes to ``callbacks.dead`` with its
reason), store the valid ones in one transaction, wait for the dead letters to be
acknowledged, and only then commit the offsets. A crash anywhere before the commit
replays the batch, which the idempotent store turns into a no-op.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from callbacks.kafka import make_consumer
from callbacks.logging import get_logger
from callbacks.models.outcomes import Outcome
from callbacks.settings import Settings
from pydantic import ValidationError

from reporter.health import ProfileHealth
from reporter.metrics import ReporterMetrics
from reporter.outcome_store import BatchResult, write_batch

log = get_logger(__name__)

GROUP_ID = "callbacks-reporter"
# Dead-letter headers as the dispatcher writes them: a reason kind, the detail, and
# where the record came from (original key and value are kept as they were).
DEAD_REASON = "invalid_outcome"
H_REASON = "cb-reason"
H_ERROR = "cb-error"
H_SOURCE_TOPIC = "cb-source-topic"
H_SOURCE_PARTITION = "cb-source-partition"
H_SOURCE_OFFSET = "cb-source-offset"
_RETRY_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


class InvalidOutcome(ValueError):
    """Why an outcome record cannot be stored; sent to callbacks.dead as the reason."""


@dataclass(frozen=True)
class Rejected:
    record: ConsumerRecord[bytes, bytes]
    reason: str


def parse_outcome(value: bytes | None) -> Outcome:
    """Validate one record value; raise InvalidOutcome with a short reason."""
    if value is None:
        raise InvalidOutcome("empty record")
    try:
        outcome = Outcome.model_validate_json(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "record"
        raise InvalidOutcome(f"{where}: {first['msg']}") from exc
    for field in ("account_id", "profile_id"):
        try:
            uuid.UUID(getattr(outcome, field))
        except ValueError as exc:
            raise InvalidOutcome(f"{field}: not a UUID") from exc
    return outcome


def parse_records(
    records: Sequence[ConsumerRecord[bytes, bytes]],
) -> tuple[list[Outcome], list[Rejected]]:
    outcomes: list[Outcome] = []
    rejected: list[Rejected] = []
    for record in records:
        try:
            outcomes.append(parse_outcome(record.value))
        except InvalidOutcome as exc:
            rejected.append(Rejected(record, str(exc)))
    return outcomes, rejected


class Ingestor:
    """The consumer loop; ``run`` until cancelled, or ``drain`` for tests and benchmarks."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        metrics: ReporterMetrics,
        *,
        group_id: str | None = None,
        consumer_options: dict[str, Any] | None = None,
        health: ProfileHealth | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._producer = producer
        self._metrics = metrics
        # The topic prefix namespaces the group too, like every topic name.
        self._group_id = group_id or f"{settings.topic_prefix}{GROUP_ID}"
        self._consumer_options = consumer_options or {}
        self._health = health  # receiver health rules (disable on 410 / failing), if wired
        self._topic = settings.topics.outcomes
        self._dead_topic = settings.topics.dead
        self._batch_max = settings.reporter_batch_max
        self.stored = 0  # attempts stored by this process (tests and the benchmark read it)

    def _consumer(self) -> AIOKafkaConsumer:
        return make_consumer(
            self._settings,
            self._topic,
            group_id=self._group_id,
            max_poll_records=self._batch_max,
            # Larger fetches: the reporter is about throughput, not latency.
            fetch_max_wait_ms=200,
            fetch_min_bytes=1,
            **self._consumer_options,
        )

    async def run(self) -> None:
        consumer = self._consumer()
        await consumer.start()
        try:
            while True:
                await self._poll_once(consumer, timeout_ms=500)
        finally:
            await consumer.stop()

    async def _poll_once(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> int:
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=self._batch_max)
        await self._update_lag(consumer)
        if not batches:
            return 0
        started = time.perf_counter()
        records = [record for part in batches.values() for record in part]
        outcomes, rejected = parse_records(records)
        await self._dead_letter(rejected)
        result = await self._store(outcomes)
        if self._health is not None:
            await self._health.apply_retrying(outcomes)
        await self._commit(consumer, batches)
        self._metrics.batch_duration.observe(time.perf_counter() - started)
        self._metrics.outcomes_ingested.inc(result.inserted)
        self._metrics.outcomes_duplicate.inc(result.duplicates)
        self.stored += result.inserted
        log.debug(
            "outcomes_ingested",
            received=len(records),
            inserted=result.inserted,
            rejected=len(rejected),
        )
        return len(records)

    async def _store(self, outcomes: list[Outcome]) -> BatchResult:
        """Write the batch, retrying with backoff: the offsets wait until it is stored."""
        attempt = 0
        while True:
            try:
                return await write_batch(self._pool, outcomes)
            except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
                self._metrics.ingest_errors.labels(stage="store").inc()
                delay = _RETRY_BACKOFF_S[min(attempt, len(_RETRY_BACKOFF_S) - 1)]
                log.warning("outcome_batch_store_failed", error=repr(exc), retry_in_s=delay)
                attempt += 1
                await asyncio.sleep(delay)

    async def _dead_letter(self, rejected: list[Rejected]) -> None:
        if not rejected:
            return
        futures = []
        for item in rejected:
            record = item.record
            log.warning(
                "outcome_rejected",
                reason=item.reason,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            self._metrics.dead_letters.labels(reason=DEAD_REASON).inc()
            futures.append(
                await self._producer.send(
                    self._dead_topic,
                    value=record.value,
                    key=record.key,
                    headers=[
                        (H_REASON, DEAD_REASON.encode()),
                        (H_ERROR, item.reason.encode()),
                        (H_SOURCE_TOPIC, record.topic.encode()),
                        (H_SOURCE_PARTITION, str(record.partition).encode()),
                        (H_SOURCE_OFFSET, str(record.offset).encode()),
                    ],
                )
            )
        # The offsets are committed only once the broker holds every dead letter.
        await asyncio.gather(*futures)

    async def _commit(
        self,
        consumer: AIOKafkaConsumer,
        batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]],
    ) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batches.items() if records}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took the partitions: their new owner replays the batch, and
            # the idempotent store makes that harmless.
            self._metrics.ingest_errors.labels(stage="commit").inc()
            log.warning("outcome_offsets_commit_failed", error=repr(exc))

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        lag = 0
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None:
                continue
            lag += max(0, highwater - await consumer.position(tp))
        self._metrics.ingest_lag.set(lag)

    async def drain(self, *, timeout_s: float = 30.0) -> int:
        """Consume until caught up with the topic's end as of the start; return the count.

        For tests and the benchmark: a deterministic end instead of a sleep.
        """
        consumer = self._consumer()
        await consumer.start()
        total = 0
        try:
            async with asyncio.timeout(timeout_s):
                while not consumer.assignment():
                    total += await self._poll_once(consumer, timeout_ms=100)
                assigned = consumer.assignment()
                end = await consumer.end_offsets(list(assigned))
                while True:
                    # An empty poll too: the local broker's end offset can lag its last
                    # batch (see dispatcher.profiles), so reaching it is not enough.
                    polled = await self._poll_once(consumer, timeout_ms=100)
                    total += polled
                    positions = {tp: await consumer.position(tp) for tp in assigned}
                    if not polled and all(positions[tp] >= end[tp] for tp in assigned):
                        return total
        finally:
            await consumer.stop()
