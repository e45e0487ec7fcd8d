"""The dispatcher's consume loop, shaped like arq's Worker.

One consumer group over every source, retry and redeliver topic, with the range
assignor so partition *i* of each lands on the same member (co-partitioned by
message). The subscription is a pattern: every retry topic that exists is read, in the
current schedule or not, so a shortened schedule strands nothing. Each record becomes
a task, at most ``START_CHUNK`` started per loop turn; offsets are committed only up to
the first unfinished record of a partition (at-least-once), periodically and on revoke
and shutdown. Fetching pauses while too many records are in flight (bounded memory) or
while hand-offs to the broker are being sent again; a retry partition is held and
paused from its first record not yet due (``dispatcher.fetch_pauses``), never blocking
any other.

A fleet, not a process: every assignment of a partition has its own epoch. A batch is
started only while its partition's epoch is the one it was fetched in, so nothing is
started for a partition revoked meanwhile, nor counted in its next assignment. On
revoke the member stops starting that partition's records, waits (``revoke_grace``) for
its in-flight callbacks to finish or reach a retry topic, commits them and lets go;
what is still unfinished then stays uncommitted and the new owner replays it.

``run()`` serves until ``request_stop()``; ``run(until_idle=True)`` returns once every
assigned partition is at its end and nothing is in flight or held (tests, benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import Awaitable
from contextlib import AsyncExitStack
from functools import partial
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.coordinator.assignors.range import RangePartitionAssignor
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord, TopicPartition
from callbacks.durations import parse_duration
from callbacks.health import probe, start_ops_server
from callbacks.kafka import make_consumer, make_producer, start_client
from callbacks.logging import get_logger
from callbacks.secretbox import SecretBox
from callbacks.sender import Sender
from callbacks.settings import Settings
from callbacks.wire import SourcePosition
from prometheus_client import CollectorRegistry

from dispatcher.batching import Handoff
from dispatcher.deliver import Deliverer
from dispatcher.endpoints.guard import EndpointGuard
from dispatcher.fetch_pauses import FetchPauses
from dispatcher.jobs import Job, job_from_record
from dispatcher.metrics import DispatcherMetrics
from dispatcher.oauth import TokenCache
from dispatcher.profiles import ProfileCache, freeze_heap
from dispatcher.progress import OffsetTracker, PartitionProgress
from dispatcher.redeliver import EventFetcher, RedeliverError, parse_request

log = get_logger("dispatcher")

POLL_TIMEOUT_MS = 50
POLL_RETRY_S = 0.1  # after a poll that raised (see ``Dispatcher._poll``)
MAX_POLL_RECORDS = 1000
# Records started per loop turn: a task's first step (parse, render, send) is the
# costliest part of a callback, and no answer is read while a turn starts them, so a
# throttled host's freed slots wait for the turn to end (docs/performance.md).
START_CHUNK = 16
RESUME_BELOW = 0.8  # resume fetching when in-flight drops under this share of the bound
RETRY_TOPIC_BASE = "callbacks.retry."


# A batch to start: its partition, the epoch it was fetched in, its records.
Work = tuple[TopicPartition, int, list[ConsumerRecord[bytes, bytes]]]


def subscription_pattern(prefix: str, sources: tuple[str, ...], redeliver: str) -> str:
    """The dispatcher's topics as one regex: the sources, the redeliver topic and every
    retry topic of this prefix, whatever its delay."""
    names = "|".join(re.escape(t) for t in (*sources, redeliver))
    retries = re.escape(prefix + RETRY_TOPIC_BASE) + r"[0-9a-z]+"
    return f"^(?:{names}|{retries})$"


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._dispatcher.on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        self._dispatcher.on_assigned(set(assigned))
        log.info(
            "partitions_assigned", partitions=sorted(f"{t.topic}[{t.partition}]" for t in assigned)
        )


class Dispatcher:
    """One dispatcher member: its consumer, producer, profile cache, guard and deliverer,
    built in ``run`` and closed when it returns."""

    def __init__(
        self,
        settings: Settings,
        *,
        registry: CollectorRegistry | None = None,
        serve_ops: bool = False,
        settle_heap: bool = False,
    ) -> None:
        self.settings = settings
        self.settle_heap = settle_heap
        self.registry = registry or CollectorRegistry()
        self.metrics = DispatcherMetrics(self.registry)
        self.serve_ops = serve_ops
        topics = settings.topics
        self._prefix = topics.prefix
        self._retry_delay: dict[str, float | None] = {}
        self._redeliver_topic = topics.redeliver
        self._subscribed = (*topics.sources, *topics.retries, topics.redeliver)
        self._pattern = subscription_pattern(topics.prefix, topics.sources, topics.redeliver)
        self._group = f"{topics.prefix}callbacks-dispatcher"
        self._tracker = OffsetTracker()
        self.metrics.uncommitted.set_function(self._tracker.uncommitted)
        # The epoch of each partition's current assignment (see the module docstring).
        self._epochs: dict[TopicPartition, int] = {}
        self._epoch_seq = itertools.count(1)
        self._handoff = Handoff(self._handoff_resent)
        self._tasks: dict[asyncio.Future[list[Awaitable[Any]]], PartitionProgress] = {}
        self._pauses = FetchPauses(lambda: self._stopping)
        self._room = asyncio.Event()
        self._finished = asyncio.Event()
        self._stopping = False
        self._lag_topics: set[str] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._deliverer: Deliverer | None = None
        self._fetcher: EventFetcher | None = None
        self.cache: ProfileCache | None = None

    def request_stop(self) -> None:
        """Stop fetching; ``run`` then drains in-flight work (bounded) and returns."""
        self._stopping = True
        self._room.set()

    async def run(self, *, until_idle: bool = False) -> None:
        """Serve until ``request_stop`` (``until_idle``: until every assigned partition
        is at its end and nothing is in flight or held), then drain and commit."""
        settings = self.settings
        async with AsyncExitStack() as stack:
            if self.serve_ops:
                runner = await start_ops_server(
                    self.registry,
                    self._readiness,
                    settings.api_host,  # the deployment's listen address
                    settings.dispatcher_metrics_port,
                )
                stack.push_async_callback(runner.cleanup)
            sender = Sender.from_settings(settings)
            stack.push_async_callback(sender.close)
            producer = make_producer(settings)
            await start_client(producer)
            stack.push_async_callback(producer.stop)
            self._producer = producer
            box = SecretBox(settings.master_keys_bytes())
            cache = ProfileCache(settings, box.open, self.metrics)
            self.cache = cache
            stack.push_async_callback(cache.stop)
            await cache.start()
            fetcher = EventFetcher(settings)
            stack.push_async_callback(fetcher.stop)
            self._fetcher = fetcher
            guard = EndpointGuard(
                max_per_host=settings.max_concurrency_per_host,
                failure_threshold=settings.breaker_failure_threshold,
                open_s=settings.breaker_open,
                on_transition=self._breaker_changed,
            )
            self._guard = guard
            self._deliverer = Deliverer(
                settings=settings,
                profiles=cache,
                sender=sender,
                guard=guard,
                tokens=TokenCache(sender),
                producer=producer,
                metrics=self.metrics,
                handoff=self._handoff,
            )
            stack.push_async_callback(self._deliverer.ordering.close)
            await cache.wait_ready()
            if self.settle_heap:
                freeze_heap()
            consumer = make_consumer(
                settings,
                group_id=self._group,
                partition_assignment_strategy=(RangePartitionAssignor,),
                max_poll_records=MAX_POLL_RECORDS,
                session_timeout_ms=int(settings.consumer_session_timeout * 1000),
                heartbeat_interval_ms=int(min(3.0, settings.consumer_session_timeout / 4) * 1000),
            )
            consumer.subscribe(pattern=self._pattern, listener=_Rebalance(self))
            await start_client(consumer)
            stack.push_async_callback(consumer.stop)
            self._consumer = consumer
            log.info(
                "dispatcher_started",
                group=self._group,
                topics=list(self._subscribed),
                pattern=self._pattern,
            )
            try:
                await self._loop(consumer, until_idle)
            finally:
                await asyncio.shield(self._shutdown(consumer))

    async def _readiness(self) -> dict[str, bool]:
        producer = self._producer
        broker = producer is not None and await probe(producer.client.fetch_all_metadata)
        # Hand-offs being sent again: the broker takes no writes, whatever metadata says.
        broker = broker and not self._handoff.failing
        return {"broker": broker, "profiles": self.cache is not None and self.cache.healthy}

    def _handoff_resent(self, topic: str, error: BaseException) -> None:
        self.metrics.handoff_resends.inc()
        self._room.set()  # the loop looks again at whether to fetch

    def _breaker_changed(self, host: str, state: str) -> None:
        self.metrics.breaker_transitions.labels(state=state).inc()
        self.metrics.breakers_open.set(self._guard.open_count())
        log.warning("circuit_breaker_" + state, host=host)

    # -- the loop ---------------------------------------------------------------------

    async def _loop(self, consumer: AIOKafkaConsumer, until_idle: bool) -> None:
        interval = self.settings.commit_interval
        last_commit = time.monotonic()
        limit = self.settings.max_in_flight
        while not self._stopping:
            full = self._tracker.in_flight >= limit or self._handoff.failing
            if full:
                self._pauses.pause_all(consumer)
            elif self._pauses.flow_paused and self._tracker.in_flight < limit * RESUME_BELOW:
                self._pauses.resume_all(consumer)
            batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = {}
            if self._pauses.flow_paused:
                self._room.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._room.wait(), interval)
            else:
                batch = await self._poll(consumer, max(limit - self._tracker.in_flight, 1))
            now_ms = int(time.time() * 1000)
            work: list[Work] = []
            for tp, fetched in batch.items():
                # aiokafka returns records of the current assignment only (a reassigned
                # partition's fetch position is reset), so they take its epoch now.
                epoch = self._epochs.get(tp)
                if epoch is None:
                    if fetched and tp in consumer.assignment():
                        # Assigned, but the assignment callback has not run yet: these
                        # are not started, so read them again rather than skip them.
                        consumer.seek(tp, fetched[0].offset)
                    continue  # revoked as the fetch returned: its next owner reads them
                delay = self._delay_of(tp.topic)
                if delay is None:
                    work.append((tp, epoch, fetched))
                else:  # a retry partition: what is due now; the rest is held
                    due = self._pauses.due_prefix(consumer, tp, fetched, delay, now_ms)
                    work.append((tp, epoch, due))
            if not self._pauses.flow_paused:
                room = limit - self._tracker.in_flight
                for tp, due in self._pauses.take_due(consumer, now_ms, room):
                    epoch = self._epochs.get(tp)
                    if epoch is not None:  # held records of a revoked partition are dropped
                        work.append((tp, epoch, due))
            await self._start_in_chunks(consumer, work)
            self.metrics.in_flight.set(self._tracker.in_flight)  # per batch, not per record
            if time.monotonic() - last_commit >= interval:
                last_commit = time.monotonic()
                await self._commit(consumer)
                await self._update_lag(consumer)
            if (
                until_idle
                and not batch
                and self._tracker.in_flight == 0
                and await self._idle(consumer)
            ):
                log.info("dispatcher_idle")
                return

    async def _poll(
        self, consumer: AIOKafkaConsumer, max_records: int
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        """The next fetched records, or none when the consumer hands over an error.

        The group coordinator's background tasks pass their errors to the next poll, once
        each: a broker gone away, or (under uvloop) a heartbeat written to a connection
        that just closed, raised as ``RuntimeError``. The consumer carries on (it joins
        the group again if it has to), so the member logs it and polls again.
        """
        try:
            batch: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
            batch = await consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=max_records)
        except (KafkaError, RuntimeError) as exc:
            self.metrics.internal_errors.labels(stage="poll").inc()
            log.warning("consumer_poll_failed", error=repr(exc))
            await asyncio.sleep(POLL_RETRY_S)
            return {}
        return batch

    def _delay_of(self, topic: str) -> float | None:
        """A retry topic's delay, read from its name (so a topic the schedule no longer
        names is still paced by its own delay); None for every other topic."""
        if topic not in self._retry_delay:
            delay: float | None = None
            base = topic.removeprefix(self._prefix)
            if topic.startswith(self._prefix) and base.startswith(RETRY_TOPIC_BASE):
                with contextlib.suppress(ValueError):
                    delay = parse_duration(base.removeprefix(RETRY_TOPIC_BASE))
            self._retry_delay[topic] = delay
        return self._retry_delay[topic]

    async def _start_in_chunks(self, consumer: AIOKafkaConsumer, work: list[Work]) -> None:
        """Start the records, ``START_CHUNK`` per loop turn, each only while its
        partition is still in the assignment it was fetched in. One left unstarted
        (stopping, or its partition revoked meanwhile) is never committed past: the
        stop commits below it, and a revoked partition's next owner reads it again."""
        budget = START_CHUNK
        for tp, epoch, records in work:
            at = 0
            while at < len(records):
                if budget == 0:
                    await asyncio.sleep(0)
                    budget = START_CHUNK
                    if self._stopping:
                        return
                if self._epochs.get(tp) != epoch:
                    break
                chunk = records[at : at + budget]
                for record in chunk:
                    self._start(tp, record)
                self.metrics.consumed_in(tp.topic, self._prefix).inc(len(chunk))
                at += len(chunk)
                budget -= len(chunk)

    def _start(self, tp: TopicPartition, record: ConsumerRecord[bytes, bytes]) -> None:
        assert self._deliverer is not None
        part = self._tracker.start(tp, record.offset)
        job: Job | None = None
        work: Awaitable[list[Awaitable[Any]]]
        if tp.topic == self._redeliver_topic:
            work = self._redeliver(record)
        else:
            job = job_from_record(
                record.value, record.key, tp.topic, tp.partition, record.offset, record.headers
            )
            work = self._deliverer.process(job)
        self._track(part, record.offset, work, job)

    def _track(
        self,
        part: PartitionProgress,
        offset: int,
        work: Awaitable[list[Awaitable[Any]]],
        set_aside: Job | None,
    ) -> None:
        """Run ``work`` for the record at ``offset``; it is finished once every record the
        work produced is acked. ``set_aside``: the job to hand to the deliverer's internal
        failure path if the broker refuses one of those records for good (set aside once:
        a refusal of the set-aside records leaves the record unfinished)."""
        task = asyncio.ensure_future(work)
        self._tasks[task] = part
        task.add_done_callback(partial(self._processed, part, offset, set_aside))

    def _processed(
        self,
        part: PartitionProgress,
        offset: int,
        set_aside: Job | None,
        task: asyncio.Future[list[Awaitable[Any]]],
    ) -> None:
        """The record's work is done; it is finished once the broker acked its records
        (callbacks on the acks, so no task stays alive just to wait for the broker)."""
        self._tasks.pop(task, None)
        if task.cancelled():
            return  # not done: the offset stays uncommitted and is delivered again
        exc = task.exception()
        if exc is not None:
            self._record_failed(exc, offset)
            return
        pending = [asyncio.ensure_future(ack) for ack in task.result()]
        if not pending:
            self._finish(part, offset)
            return
        remaining = len(pending)
        failed = False

        def acked(future: asyncio.Future[Any]) -> None:
            nonlocal remaining, failed
            if future.cancelled() or failed:
                return
            error = future.exception()
            if error is not None:
                failed = True
                self._hand_off_refused(part, offset, set_aside, error)
                return
            remaining -= 1
            if remaining == 0:
                self._finish(part, offset)

        for future in pending:
            future.add_done_callback(acked)

    def _hand_off_refused(
        self, part: PartitionProgress, offset: int, job: Job | None, error: BaseException
    ) -> None:
        """The broker refused a record of this one's for good (transient errors are
        resent by the batchers and never get here). Stopping, or nothing to set aside
        with: left unfinished, so it is read again. Otherwise the record goes the
        internal-failure way (dead letter and a final outcome) rather than holding its
        partition's commits for ever."""
        self._record_failed(error, offset)
        if job is None or self._stopping or self._deliverer is None:
            return
        if self._epochs.get(part.tp) is None:
            return  # revoked meanwhile: the next owner reads it again
        assert isinstance(error, Exception)
        self._track(part, offset, self._deliverer.internal_failure(job, error), None)

    def _record_failed(self, exc: BaseException, offset: int) -> None:
        self.metrics.internal_errors.labels(stage="record").inc()
        log.error("dispatch_record_failed", error=repr(exc), offset=offset)

    def _finish(self, part: PartitionProgress, offset: int) -> None:
        self._tracker.finish(part, offset)
        self._finished.set()  # a revoke may be waiting for this
        limit = self.settings.max_in_flight * RESUME_BELOW
        if self._pauses.flow_paused and self._tracker.in_flight < limit:
            self._room.set()

    async def _redeliver(self, record: ConsumerRecord[bytes, bytes]) -> list[Awaitable[Any]]:
        assert self._deliverer is not None
        assert self._fetcher is not None
        here = Job(
            record.value, record.key, SourcePosition(record.topic, record.partition, record.offset)
        )
        try:
            job = await self._fetcher.job_for(parse_request(record.value))
        except RedeliverError as exc:
            log.warning("redeliver_refused", reason=exc.reason, detail=exc.detail)
            await self._deliverer.dead_letter(here, exc.reason, exc.detail)
            return []
        return await self._deliverer.process(job)

    # -- commits, rebalance, idleness, shutdown --------------------------------------

    async def _commit(
        self, consumer: AIOKafkaConsumer, tps: set[TopicPartition] | None = None
    ) -> None:
        """Commit what moved, for partitions this member owns now (or is revoking)."""
        owned = set(self._epochs) if tps is None else tps
        points = self._tracker.commit_points(owned)
        if not points:
            return
        try:
            await consumer.commit(points)
        except KafkaError as exc:
            # Not fatal: the next commit carries the same or later offsets; after a
            # rebalance the new owner redelivers (at-least-once).
            self.metrics.commits.labels(result="error").inc()
            log.warning("offset_commit_failed", error=repr(exc))
            return
        self._tracker.committed(points)
        self.metrics.commits.labels(result="ok").inc()

    async def _update_lag(self, consumer: AIOKafkaConsumer) -> None:
        """``callbacks_consumer_lag``: end offsets minus committed offsets, per topic, of
        the partitions this member owns; a topic it owns nothing of now reads 0."""
        owned = set(self._epochs) & consumer.assignment()
        positions: dict[TopicPartition, int] = {}
        for tp in owned:
            if self._tracker.committed_offset(tp) is None:
                with contextlib.suppress(KafkaError, AssertionError):
                    positions[tp] = await consumer.position(tp)
        lag = self._tracker.lag_by_topic(owned, consumer.highwater, positions.get)
        for topic in self._lag_topics - lag.keys():
            self.metrics.lag.labels(topic=topic.removeprefix(self._prefix)).set(0)
        for topic, value in lag.items():
            self.metrics.lag.labels(topic=topic.removeprefix(self._prefix)).set(value)
        self._lag_topics = set(lag) | self._lag_topics

    def _message_partitions(self, tps: set[TopicPartition]) -> set[int]:
        """Partition numbers of the co-partitioned (source and retry) topics in ``tps``."""
        sources = set(self.settings.topics.sources)
        return {
            tp.partition
            for tp in tps
            if tp.topic in sources or self._delay_of(tp.topic) is not None
        }

    def on_assigned(self, assigned: set[TopicPartition]) -> None:
        """A new assignment: each partition starts a new epoch (and the read-back of its
        messages' ordering state, ``dispatcher.ordering``)."""
        for tp in assigned:
            self._epochs[tp] = next(self._epoch_seq)
        if self._deliverer is not None:
            self._deliverer.ordering.assigned(self._message_partitions(assigned))

    async def on_revoked(self, revoked: set[TopicPartition]) -> None:
        """Stop starting, wait (bounded) for in-flight work, commit it, let go."""
        for tp in revoked:
            self._epochs.pop(tp, None)  # nothing more of them is started from here on
        self._pauses.forget(revoked)  # held records were never started: read again
        started = time.monotonic()
        deadline = started + self.settings.revoke_wait
        while self._tracker.unfinished(revoked) and time.monotonic() < deadline:
            self._finished.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._finished.wait(), deadline - time.monotonic())
        left = self._tracker.unfinished(revoked)
        self.metrics.revoke_drain.observe(time.monotonic() - started)
        if self._consumer is not None:
            await self._commit(self._consumer, revoked)
        if left:
            log.warning("revoke_left_unfinished", records=left, partitions=len(revoked))
            for task, part in list(self._tasks.items()):
                if part.tp in revoked:
                    task.cancel()  # the next owner delivers it again; no retry record
        self._tracker.forget(revoked)
        if self._deliverer is not None:
            self._deliverer.ordering.revoked(self._message_partitions(revoked))
        self.metrics.in_flight.set(self._tracker.in_flight)

    async def _idle(self, consumer: AIOKafkaConsumer) -> bool:
        assigned = consumer.assignment()
        if not assigned or self._pauses.waiting:
            return False
        ends = await consumer.end_offsets(list(assigned))
        for tp in assigned:
            if await consumer.position(tp) < ends[tp]:
                return False
        await self._commit(consumer)
        return True

    async def _shutdown(self, consumer: AIOKafkaConsumer) -> None:
        """Stop fetching, give in-flight work a bounded grace, cancel the rest, commit."""
        with contextlib.suppress(KafkaError):
            consumer.pause(*consumer.assignment())
        self._pauses.cancel_all()
        if self._tasks:
            log.info("dispatcher_draining", in_flight=len(self._tasks))
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.settings.shutdown_grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning("dispatcher_cancelled_in_flight", count=len(pending))
                await asyncio.gather(*pending, return_exceptions=True)
        if self._producer is not None:
            # Records handed over but not yet acked: flush, so their offsets can commit.
            with contextlib.suppress(KafkaError, TimeoutError):
                async with asyncio.timeout(self.settings.shutdown_grace):
                    if self._deliverer is not None:
                        # batched outcomes, retries and parked records
                        await self._deliverer.drain()
                    await self._producer.flush()
            await asyncio.sleep(0)  # let the ack callbacks run
        await self._commit(consumer)
        log.info("dispatcher_stopped")
