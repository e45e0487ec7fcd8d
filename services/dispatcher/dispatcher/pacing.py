"""When the dispatcher stops fetching, and from which partitions.

Two reasons, kept apart so neither undoes the other: every partition pauses while too
many records are in flight (bounded memory), and a retry partition pauses until its
head is due. A paused retry partition never blocks any other partition.

A retry record is due its topic's fixed delay after it was written, so among retries
the head of a partition is always the next one due. A parked record (``jobs.park``)
carries an earlier due time of its own, ``cb-due-ms``. It is still read in partition
order, so one parked behind a real retry (or behind a record parked for a host with a
longer backlog) waits for that record's due time: head-of-line blocking, bounded by the
topic's delay, which is what every parked record waited before due times existed. The
alternative (a topic of its own for parked records, or reading past the head) costs a
topic per deployment or gives up the one-seek pause; the bound makes it not worth it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition
from callbacks.retry import due_in_s

from dispatcher.jobs import Headers, due_ms_of


def record_due_in_s(timestamp_ms: int, headers: Headers, delay_s: float, now_ms: int) -> float:
    """How long until a record of a retry topic with delay ``delay_s`` is due (<= 0: now).

    A retry is due ``delay_s`` after it was written; a parked record at its own due time,
    but never later than a retry written with it (a header cannot hold a record longer
    than its topic's delay).
    """
    by_topic = due_in_s(timestamp_ms, delay_s, now_ms)
    due_ms = due_ms_of(headers)
    if due_ms is None:
        return by_topic
    return min(by_topic, (due_ms - now_ms) / 1000.0)


class Pacing:
    def __init__(self, stopping: Callable[[], bool]) -> None:
        self._stopping = stopping
        self._waiting: dict[TopicPartition, asyncio.TimerHandle] = {}
        self.flow_paused = False

    @property
    def waiting(self) -> bool:
        """Some retry partition waits for its head to become due."""
        return bool(self._waiting)

    def pause_all(self, consumer: AIOKafkaConsumer) -> None:
        if not self.flow_paused:
            self.flow_paused = True
            consumer.pause(*consumer.assignment())

    def resume_all(self, consumer: AIOKafkaConsumer) -> None:
        """Resume what the in-flight bound paused; retry partitions keep waiting."""
        self.flow_paused = False
        consumer.resume(*(tp for tp in consumer.assignment() if tp not in self._waiting))

    def due_prefix(
        self,
        consumer: AIOKafkaConsumer,
        tp: TopicPartition,
        records: list[ConsumerRecord[bytes, bytes]],
        delay_s: float,
        now_ms: int,
    ) -> list[ConsumerRecord[bytes, bytes]]:
        """The records that are due; at the first one that is not, seek back to it and
        pause its partition until it is."""
        for index, record in enumerate(records):
            wait_s = record_due_in_s(record.timestamp, record.headers, delay_s, now_ms)
            if wait_s > 0:
                consumer.seek(tp, record.offset)
                consumer.pause(tp)
                previous = self._waiting.pop(tp, None)
                if previous is not None:
                    previous.cancel()
                loop = asyncio.get_running_loop()
                self._waiting[tp] = loop.call_later(wait_s, self._due, consumer, tp)
                return records[:index]
        return records

    def _due(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        self._waiting.pop(tp, None)
        if not self.flow_paused and not self._stopping() and tp in consumer.assignment():
            consumer.resume(tp)

    def forget(self, partitions: Iterable[TopicPartition]) -> None:
        """Partitions revoked from this member: their timers no longer apply."""
        for tp in partitions:
            handle = self._waiting.pop(tp, None)
            if handle is not None:
                handle.cancel()

    def cancel_all(self) -> None:
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
