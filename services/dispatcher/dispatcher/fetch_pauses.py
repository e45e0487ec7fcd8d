"""When the dispatcher stops fetching, and from which partitions.

Two reasons, kept apart so neither undoes the other: every partition pauses while too
many records are in flight (bounded memory), and a retry partition pauses until its
head is due. A paused retry partition never blocks any other partition.

A retry record is due its topic's fixed delay after it was written, so among retries
the head of a partition is always the next one due. A parked record (``endpoints.parking.park``)
carries an earlier due time of its own, ``cb-due-ms``. It is still read in partition
order, so one parked behind a real retry (or behind a record parked for a host with a
longer backlog) waits for that record's due time: head-of-line blocking, bounded by the
topic's delay (docs/adaptive-concurrency.md weighs the alternatives).

The records fetched behind a head that is not due are kept in memory (at most
``HOLD_MAX`` per partition) and started from there once due, rather than read again at
every wake; the partition stays paused until they are all started. Held records are not
started, so the commit point stays before them: a restart or rebalance reads them again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Protocol

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition
from callbacks.retry import due_in_s
from callbacks.wire import Headers, read_due_ms

# Records of one retry partition kept in memory behind a head that is not yet due;
# beyond it the partition seeks back and reads the rest again later. A fetch returns
# at most ``worker.MAX_POLL_RECORDS`` in all, so this bounds memory well below that.
HOLD_MAX = 500


def record_due_in_s(timestamp_ms: int, headers: Headers, delay_s: float, now_ms: int) -> float:
    """How long until a record of a retry topic with delay ``delay_s`` is due (<= 0: now).

    A retry is due ``delay_s`` after it was written; a parked record at its own due time,
    but never later than a retry written with it (a header cannot hold a record longer
    than its topic's delay).
    """
    by_topic = due_in_s(timestamp_ms, delay_s, now_ms)
    due_ms = read_due_ms(headers)
    if due_ms is None:
        return by_topic
    return min(by_topic, (due_ms - now_ms) / 1000.0)


class Timer(Protocol):
    """A scheduled call that can be cancelled (``asyncio.TimerHandle``)."""

    def cancel(self) -> None: ...


# Calls a function after a delay in seconds, like ``loop.call_later``.
CallLater = Callable[[float, Callable[[], None]], Timer]


def loop_call_later(delay_s: float, callback: Callable[[], None]) -> Timer:
    """``call_later`` of the running event loop."""
    return asyncio.get_running_loop().call_later(delay_s, callback)


class FetchPauses:
    """Which partitions are paused, and the records held behind a retry partition's head.

    ``stopping`` says whether the dispatcher is stopping (nothing resumes then);
    ``call_later`` schedules the wake-up at a held head's due time (tests pass a fake).
    """

    def __init__(
        self, stopping: Callable[[], bool], *, call_later: CallLater = loop_call_later
    ) -> None:
        self._stopping = stopping
        self._call_later = call_later
        self._waiting: dict[TopicPartition, Timer] = {}
        # Per paused retry partition: records fetched but not due yet, and the delay
        # of its topic. Its timer (``_waiting``) moves it to ``_ready`` when its head
        # is due; the consume loop then takes what is due (``take_due``).
        self._held: dict[TopicPartition, tuple[list[ConsumerRecord[bytes, bytes]], float]] = {}
        self._ready: set[TopicPartition] = set()
        self.flow_paused = False

    @property
    def waiting(self) -> bool:
        """Some retry partition waits for its head to become due."""
        return bool(self._waiting) or bool(self._held)

    def pause_all(self, consumer: AIOKafkaConsumer) -> None:
        if not self.flow_paused:
            self.flow_paused = True
            consumer.pause(*consumer.assignment())

    def resume_all(self, consumer: AIOKafkaConsumer) -> None:
        """Resume what the in-flight bound paused; retry partitions keep waiting."""
        self.flow_paused = False
        waiting = self._waiting.keys() | self._held.keys()
        consumer.resume(*(tp for tp in consumer.assignment() if tp not in waiting))

    def due_prefix(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        delay_s: float,
        now_ms: int,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The records that are due; from the first one that is not, hold the rest (at
        most ``HOLD_MAX``, seeking back to the first one beyond) and pause the partition
        until they are all started."""
        held = self._held.pop(tp, None)
        if held is not None:  # not expected (the partition is paused), but keep order
            records = held[0] + records
        for index, record in enumerate(records):
            wait_s = record_due_in_s(record.timestamp, record.headers, delay_s, now_ms)
            if wait_s > 0:
                rest = records[index:]
                if len(rest) > HOLD_MAX:
                    consumer.seek(tp, rest[HOLD_MAX].offset)
                    rest = rest[:HOLD_MAX]
                consumer.pause(tp)
                self._held[tp] = (rest, delay_s)
                self._wake_at(consumer, tp, wait_s)
                return records[:index]
        if held is not None:
            self._resume_unless_held(consumer, tp)
        return records

    def take_due(
        self, consumer: AIOKafkaConsumer, now_ms: int, room: int
    ) -> Iterator[tuple[TopicPartition, list[ConsumerRecord[bytes, bytes]]]]:
        """Held records whose time has come, per partition, at most ``room`` in all
        (the in-flight bound); a partition whose held records are all taken resumes."""
        for tp in list(self._ready):
            if room <= 0:
                return
            self._ready.discard(tp)
            held = self._held.pop(tp, None)
            if held is None:
                continue
            records, delay_s = held
            due = self.due_prefix(consumer, tp, records, delay_s, now_ms)
            if len(due) > room:  # due, but no room yet: first in line next time
                later = self._held.pop(tp, ([], delay_s))[0]
                self._held[tp] = (due[room:] + later, delay_s)
                self._ready.add(tp)
                due = due[:room]
            room -= len(due)
            self._resume_unless_held(consumer, tp)
            yield tp, due

    def _resume_unless_held(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        if tp in self._held or self.flow_paused or self._stopping():
            return
        if tp in consumer.assignment():
            consumer.resume(tp)

    def _wake_at(self, consumer: AIOKafkaConsumer, tp: TopicPartition, wait_s: float) -> None:
        previous = self._waiting.pop(tp, None)
        if previous is not None:
            previous.cancel()
        self._waiting[tp] = self._call_later(wait_s, partial(self._due, consumer, tp))

    def _due(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        self._waiting.pop(tp, None)
        if tp in self._held:
            self._ready.add(tp)  # the consume loop starts them (``take_due``)
        else:
            self._resume_unless_held(consumer, tp)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions revoked from this member: their timers and held records no longer
        apply (held records were never started: the new owner reads them)."""
        for tp in partitions:
            handle = self._waiting.pop(tp, None)
            if handle is not None:
                handle.cancel()
            self._held.pop(tp, None)
            self._ready.discard(tp)

    def cancel_all(self) -> None:
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        self._held.clear()
        self._ready.clear()
