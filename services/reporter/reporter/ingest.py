"""Consume ``callbacks.outcomes`` in batches into the delivery log.

Order per batch: parse every record (a malformed one goes to ``callbacks.dead`` with its
reason), store the valid ones in one transaction, wait for the dead letters to be
acknowledged, and only then commit the offsets. A crash anywhere before the commit
replays the batch, which the idempotent store turns into a no-op.

One bad record never stalls the stage: a batch PostgreSQL refuses for its data (a value
it cannot hold, such as ``\u0000`` in a text, passes parsing) is split in halves until
the refused records are found; they go to ``callbacks.dead`` as ``outcome_refused`` and
the rest is stored. Errors of the database itself (connection, restart) are retried
with backoff (``callbacks.backoff``), holding the offsets.

After each batch (at most every ``PROGRESS_INTERVAL_S``) ingest records its progress
per partition in PostgreSQL (``reporter.progress``): the report schedule waits for it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError
from callbacks.backoff import STORE_RETRY_S, Backoff, retry_until_done
from callbacks.db import DATABASE_ERRORS
from callbacks.kafka import make_consumer, start_client
from callbacks.logging import get_logger
from callbacks.models.outcomes import Outcome
from callbacks.settings import Settings
from callbacks.wire import SourcePosition, dead_letter_headers
from pydantic import ValidationError

from reporter.auto_disable import ProfileHealth
from reporter.metrics import ReporterMetrics
from reporter.outcome_store import BatchResult, write_batch
from reporter.progress import PartitionProgress, record_progress, register_partitions

log = get_logger(__name__)

GROUP_ID = "callbacks-reporter"
# Dead-letter reason kinds (``callbacks.wire.H_REASON``) of the records ingest sets aside.
DEAD_REASON = "invalid_outcome"
REFUSED_REASON = "outcome_refused"
# What PostgreSQL raises when it refuses the *data* of a batch (SQLSTATE classes 22 data
# exception, 23 integrity violation, 54 program limit exceeded): retrying the same rows
# cannot help, so the batch is split to find the records that cause it.
REFUSED_ERRORS: tuple[type[asyncpg.PostgresError], ...] = (
    asyncpg.DataError,
    asyncpg.IntegrityConstraintViolationError,
    asyncpg.ProgramLimitExceededError,
)
# How often ingest records its per-partition progress (and asks for end offsets).
PROGRESS_INTERVAL_S = 1.0


class InvalidOutcome(ValueError):
    """Why an outcome record cannot be stored; sent to callbacks.dead as the reason."""


@dataclass(frozen=True)
class DeadLetter:
    """A record on its way to ``callbacks.dead``: ``kind`` is the letter's reason kind,
    ``reason`` its detail (``callbacks.wire.dead_letter_headers``)."""

    record: ConsumerRecord[bytes, bytes]
    reason: str
    kind: str = DEAD_REASON


@dataclass(frozen=True)
class Parsed:
    record: ConsumerRecord[bytes, bytes]
    outcome: Outcome


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
) -> tuple[list[Parsed], list[DeadLetter]]:
    parsed: list[Parsed] = []
    rejected: list[DeadLetter] = []
    for record in records:
        try:
            parsed.append(Parsed(record, parse_outcome(record.value)))
        except InvalidOutcome as exc:
            rejected.append(DeadLetter(record, str(exc)))
    return parsed, rejected


def _record_time(record: ConsumerRecord[bytes, bytes]) -> datetime | None:
    if record.timestamp is None or record.timestamp < 0:
        return None
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
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
        self._clock = clock  # when a caught-up partition is stamped caught up
        self._record_times: dict[int, datetime] = {}  # newest stored, not yet recorded
        self._registered = 0  # partition count last registered in ingest_progress
        self._progress_at = float("-inf")
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
        await start_client(consumer)
        try:
            while True:
                await self._poll_once(consumer, timeout_ms=500)
        finally:
            await consumer.stop()

    async def _poll_once(self, consumer: AIOKafkaConsumer, timeout_ms: int) -> int:
        batches = await consumer.getmany(timeout_ms=timeout_ms, max_records=self._batch_max)
        await self._update_lag(consumer)
        if not batches:
            await self._record_progress(consumer)
            return 0
        started = time.perf_counter()
        records = [record for part in batches.values() for record in part]
        parsed, rejected = parse_records(records)
        result, refused = await self._store(parsed)
        await self._dead_letter(rejected + refused)
        if self._health is not None:
            refused_ids = {id(item.record) for item in refused}
            stored = [p.outcome for p in parsed if id(p.record) not in refused_ids]
            await self._health.apply_retrying(stored)
        await self._commit(consumer, batches)
        for tp, part in batches.items():
            times = [t for t in map(_record_time, part) if t is not None]
            if times:
                newest = max(times)
                known = self._record_times.get(tp.partition)
                self._record_times[tp.partition] = newest if known is None else max(known, newest)
        await self._record_progress(consumer)
        self._metrics.batch_duration.observe(time.perf_counter() - started)
        self._metrics.outcomes_ingested.inc(result.inserted)
        self._metrics.outcomes_duplicate.inc(result.duplicates)
        self.stored += result.inserted
        log.debug(
            "outcomes_ingested",
            received=len(records),
            inserted=result.inserted,
            rejected=len(rejected),
            refused=len(refused),
        )
        return len(records)

    async def _store(self, parsed: list[Parsed]) -> tuple[BatchResult, list[DeadLetter]]:
        """Store the batch; return the result and the records PostgreSQL refused.

        A refused batch is split in halves, recursively, so one bad record costs about
        ``2 * log2(batch)`` extra statements and every other record is still stored.
        """
        try:
            return await self._write([p.outcome for p in parsed]), []
        except REFUSED_ERRORS as exc:
            if len(parsed) == 1:
                [item] = parsed
                reason = f"refused by the database: {type(exc).__name__}: {exc}"[:500]
                return BatchResult(received=0, inserted=0), [
                    DeadLetter(item.record, reason, REFUSED_REASON)
                ]
        half = len(parsed) // 2
        first, refused_first = await self._store(parsed[:half])
        second, refused_second = await self._store(parsed[half:])
        result = BatchResult(
            received=first.received + second.received,
            inserted=first.inserted + second.inserted,
        )
        return result, refused_first + refused_second

    async def _write(self, outcomes: list[Outcome]) -> BatchResult:
        """Write, retrying with backoff: the offsets wait until it is stored.

        Raises only what ``REFUSED_ERRORS`` names: the data, not the database, is wrong.
        """

        def failed(exc: BaseException, delay_s: float) -> None:
            self._metrics.ingest_errors.labels(stage="store").inc()
            log.warning("outcome_batch_store_failed", error=repr(exc), retry_in_s=delay_s)

        return await retry_until_done(
            lambda: write_batch(self._pool, outcomes),
            retry_on=DATABASE_ERRORS,
            give_up_on=REFUSED_ERRORS,
            backoff=Backoff(STORE_RETRY_S),
            on_error=failed,
        )

    async def _dead_letter(self, rejected: list[DeadLetter]) -> None:
        if not rejected:
            return
        futures = []
        for item in rejected:
            record = item.record
            log.warning(
                "outcome_rejected",
                kind=item.kind,
                reason=item.reason,
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
            )
            self._metrics.dead_letters.labels(reason=item.kind).inc()
            futures.append(
                await self._producer.send(
                    self._dead_topic,
                    value=record.value,
                    key=record.key,
                    headers=dead_letter_headers(
                        SourcePosition(record.topic, record.partition, record.offset),
                        item.kind,
                        item.reason,
                    ),
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

    async def _record_progress(self, consumer: AIOKafkaConsumer, *, force: bool = False) -> None:
        """Record how far each assigned partition is stored (at most every interval).

        A failure is logged and counted, never raised: progress only holds reports back,
        and the next pass records it again.
        """
        started = time.monotonic()
        if not force and started - self._progress_at < PROGRESS_INTERVAL_S:
            return
        assigned = sorted(consumer.assignment())
        if not assigned:
            return
        self._progress_at = started
        try:
            partitions = consumer.partitions_for_topic(self._topic) or set()
            if partitions and len(partitions) != self._registered:
                await register_partitions(self._pool, self._topic, len(partitions))
                self._registered = len(partitions)
            # Read the clock before the end offsets: whatever reached the broker before
            # this instant is below them.
            at = self._clock()
            ends = await consumer.end_offsets(assigned)
            progress = []
            for tp in assigned:
                position = await consumer.position(tp)
                end = ends.get(tp)
                progress.append(
                    PartitionProgress(
                        partition=tp.partition,
                        committed_offset=position,
                        end_offset=end,
                        record_time=self._record_times.get(tp.partition),
                        caught_up_at=at if end is not None and position >= end else None,
                    )
                )
            await record_progress(self._pool, self._topic, progress)
        except (KafkaError, *DATABASE_ERRORS) as exc:
            self._metrics.ingest_errors.labels(stage="progress").inc()
            log.warning("ingest_progress_failed", error=repr(exc))
            return
        for item in progress:
            self._record_times.pop(item.partition, None)

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
        await start_client(consumer)
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
                        await self._record_progress(consumer, force=True)
                        return total
        finally:
            await consumer.stop()
