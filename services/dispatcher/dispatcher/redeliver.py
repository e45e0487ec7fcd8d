"""Redelivery requests: fetch the original event where it sits and deliver it again now.

Why read the source topic: the delivery log keeps no event bodies (little personal data
at rest), only the event's position. A separate group-less consumer, assigned to one
partition at a time, reads that single record; the request's ``event_id`` must match.
"""

from __future__ import annotations

import asyncio
import time

import orjson
import pydantic
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition
from callbacks.kafka import make_consumer, start_client
from callbacks.models.outcomes import RedeliverRequest
from callbacks.settings import Settings
from callbacks.wire import SourcePosition

from dispatcher.jobs import Job

FETCH_TIMEOUT_S = 5.0


class RedeliverError(Exception):
    """The request cannot be served; ``reason`` is a bounded kind."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_request(raw: bytes | None) -> RedeliverRequest:
    try:
        return RedeliverRequest.model_validate_json(raw or b"")
    except pydantic.ValidationError as exc:
        raise RedeliverError("invalid_redeliver", str(exc.errors()[:1])) from exc


class EventFetcher:
    """Reads single records back from their source topics, one request at a time."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._consumer: AIOKafkaConsumer | None = None
        self._lock = asyncio.Lock()

    async def stop(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def job_for(self, request: RedeliverRequest) -> Job:
        """The job that delivers the original event with the request's id and attempt."""
        value, key = await self._fetch(
            request.source_topic, request.source_partition, request.source_offset
        )
        try:
            event_id = orjson.loads(value or b"null").get("event_id")
        except (orjson.JSONDecodeError, AttributeError) as exc:
            raise RedeliverError("redeliver_mismatch", "source record is not an event") from exc
        if event_id != request.event_id:
            raise RedeliverError("redeliver_mismatch", "event_id differs at the source position")
        return Job(
            value,
            key,
            SourcePosition(request.source_topic, request.source_partition, request.source_offset),
            attempt=max(request.attempt, 1),
            delivery_id=request.delivery_id,
            profile_id=request.profile_id,
        )

    async def _fetch(
        self, topic: str, partition: int, offset: int
    ) -> tuple[bytes | None, bytes | None]:
        async with self._lock:
            if self._consumer is None:
                consumer = make_consumer(self._settings, group_id=None)
                await start_client(consumer)
                self._consumer = consumer
            consumer = self._consumer
            tp = TopicPartition(topic, partition)
            consumer.assign([tp])
            consumer.seek(tp, offset)
            deadline = time.monotonic() + FETCH_TIMEOUT_S
            while time.monotonic() < deadline:
                batch = await consumer.getmany(tp, timeout_ms=200, max_records=1)
                for record in batch.get(tp, []):
                    if record.offset == offset:
                        return record.value, record.key
                    raise RedeliverError("redeliver_not_found", "no record at the source offset")
            raise RedeliverError("redeliver_not_found", "source record not fetched in time")
