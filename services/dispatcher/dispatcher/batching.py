"""Records of one topic gathered per partition and produced as one batch every few ms.

Why: every attempt writes an outcome record, and ``AIOKafkaProducer.send`` costs several
times more CPU per record (partitioner, serialiser, accumulator, one future each) than
appending to a batch built with ``create_batch`` (docs/performance.md). Records added
within ``LINGER_S`` share a batch per partition; each caller gets the batch's
acknowledgement, so a record is still only "done" once the broker has it. The linger
lets a batch gather more than one loop turn's records, since each produce request has a
fixed cost to encode and answer. It delays only the acknowledgements (so the commits),
never a callback.

A batch the broker does not take is sent again, with backoff, until it is acknowledged
(a broker away longer than the producer's request timeout, a lost leader, too few
in-sync replicas): a hand-off is never forgotten. Only a batch that can never be taken
(a record too large) fails its callers. ``Handoff`` counts the batches being sent again,
so the dispatcher can stop fetching and say it is not ready meanwhile.

The producer queues one batch per partition; ``send_batch`` waits while the previous one
is still queued. So a partition has at most one batch waiting there, and the next one
stays open, gathering records, until that wait is over: the batches grow with the load
instead of costing one wait each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError, ProducerClosed
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from callbacks.logging import get_logger

log = get_logger(__name__)

_NO_HEADERS: list[tuple[str, bytes]] = []
LINGER_S = 0.005  # how long a partition's open batch gathers records before it is sent
RESEND_FIRST_S = 0.2  # backoff of a batch sent again: doubling up to RESEND_MAX_S
RESEND_MAX_S = 5.0
# Errors no resend can mend; every other producer error is sent again.
_PERMANENT = (MessageSizeTooLargeError, ProducerClosed)

Record = tuple[int | None, bytes | None, bytes | None, list[tuple[str, bytes]]]


class Handoff:
    """Batches being sent again after the broker did not take them, across batchers."""

    def __init__(self, on_resend: Callable[[str, BaseException], None] | None = None) -> None:
        self.resending = 0
        self._on_resend = on_resend

    @property
    def failing(self) -> bool:
        return self.resending > 0

    def note(self, topic: str, error: BaseException) -> None:
        if self._on_resend is not None:
            self._on_resend(topic, error)


@dataclass
class _Open:
    batch: BatchBuilder
    # What the batch holds, to build it again if the broker does not take it.
    records: list[Record] = field(default_factory=list)
    acked: asyncio.Future[Any] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class TopicBatcher:
    """The open batches of one topic, one per partition; ``send`` returns a record's ack."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        handoff: Handoff | None = None,
        *,
        max_record_bytes: int = 1024 * 1024,
    ) -> None:
        self._producer = producer
        self.topic = topic
        self._max_record_bytes = max_record_bytes
        self._handoff = handoff or Handoff()
        self._open: dict[int, _Open] = {}
        self._flush_scheduled = False
        self._sending: set[asyncio.Task[None]] = set()
        # Batches per partition handed to ``send_batch`` and not yet queued by it.
        self._queueing: dict[int, int] = {}

    def send(
        self,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        *,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp_ms: int | None = None,
    ) -> asyncio.Future[Any]:
        """Add a record to ``partition``'s batch; the future resolves when the broker
        acknowledged the batch.

        A record over ``max_record_bytes`` raises ``MessageSizeTooLargeError`` here, as
        ``AIOKafkaProducer.send`` does: it never joins a batch, so no other record shares
        its refusal and no resend is attempted for it.
        """
        if headers is None:
            headers = _NO_HEADERS  # the builder takes a list, and only reads it
        size = DefaultRecordBatchBuilder.estimate_size_in_bytes(key, value, headers)
        if size > self._max_record_bytes:
            raise MessageSizeTooLargeError(
                f"a record of {size} bytes is over the limit of {self._max_record_bytes}"
                f" for {self.topic}"
            )
        current = self._open.get(partition)
        if current is None:
            current = self._start(partition)
        if (
            current.batch.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
            is None
        ):
            # Full: send it now and start another (one record always fits an empty one).
            self._send(partition, self._open.pop(partition))
            current = self._start(partition)
            if (
                current.batch.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
                is None
            ):
                size = len(value or b"")
                raise ValueError(f"a record of {size} bytes does not fit in a batch")
        current.records.append((timestamp_ms, key, value, headers))
        return current.acked

    def _start(self, partition: int) -> _Open:
        current = _Open(self._producer.create_batch())
        self._open[partition] = current
        if partition not in self._queueing:
            self._schedule_flush()
        return current

    def flush(self, *, everything: bool = False) -> None:
        """Send the open batches of partitions with none waiting to be queued (``LINGER_S``
        after the first record); ``everything``: all of them (shutdown)."""
        self._flush_scheduled = False
        for partition in list(self._open):
            if everything or partition not in self._queueing:
                self._send(partition, self._open.pop(partition))

    def _schedule_flush(self) -> None:
        if not self._flush_scheduled and self._open:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_later(LINGER_S, self.flush)

    async def drain(self) -> None:
        """Send what is open and wait until every batch sent so far is answered
        (shutdown: the records' offsets can commit only after their acks)."""
        while self._open or self._sending:
            self.flush(everything=True)
            await asyncio.gather(*self._sending, return_exceptions=True)

    def _send(self, partition: int, current: _Open) -> None:
        current.batch.close()
        self._queueing[partition] = self._queueing.get(partition, 0) + 1
        task = asyncio.ensure_future(self._produce(partition, current))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _produce(self, partition: int, current: _Open) -> None:
        batch, backoff, resending = current.batch, RESEND_FIRST_S, False
        try:
            while True:
                try:
                    try:
                        ack = await self._producer.send_batch(
                            batch, self.topic, partition=partition
                        )
                    finally:
                        if batch is current.batch:  # queued (or refused) the first time
                            self._queued(partition)
                    result = await ack
                    break
                except _PERMANENT as exc:
                    self._fail(current, exc)
                    return
                except KafkaError as exc:
                    if not resending:
                        resending = True
                        self._handoff.resending += 1
                    self._handoff.note(self.topic, exc)
                    log.warning(
                        "handoff_resend",
                        topic=self.topic,
                        partition=partition,
                        records=len(current.records),
                        error=repr(exc),
                        backoff_s=backoff,
                    )
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, RESEND_MAX_S)
                    batch = self._rebuilt(current)
                except Exception as exc:  # noqa: BLE001 - handed on: each caller's record fails
                    self._fail(current, exc)
                    return
        except asyncio.CancelledError:
            current.acked.cancel()
            raise
        finally:
            if resending:
                self._handoff.resending -= 1
        if not current.acked.done():
            current.acked.set_result(result)

    def _queued(self, partition: int) -> None:
        left = self._queueing.pop(partition) - 1
        if left:
            self._queueing[partition] = left
        self._schedule_flush()  # this partition's next batch may go now

    def _rebuilt(self, current: _Open) -> BatchBuilder:
        """A fresh batch with the same records (a sent builder cannot be sent again)."""
        batch = self._producer.create_batch()
        for timestamp_ms, key, value, headers in current.records:
            batch.append(timestamp=timestamp_ms, key=key, value=value, headers=headers)
        batch.close()
        return batch

    @staticmethod
    def _fail(current: _Open, exc: BaseException) -> None:
        if not current.acked.done():
            current.acked.set_exception(exc)
