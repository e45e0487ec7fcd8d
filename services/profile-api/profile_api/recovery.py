"""Bulk recovery, the worker side: every replica runs one :class:`RecoveryRunner`.

A recovery (a ``recoveries`` row, made by ``routes/recoveries.py``) is worked by one
replica at a time: the runner claims a ``running`` row whose lease is free or expired
(``FOR UPDATE SKIP LOCKED``, so two replicas never claim the same row), then pages
through the profile's callbacks of the window in ``(first_attempted_at, delivery_id)``
order and publishes one ``RedeliverRequest`` per callback on ``callbacks.redeliver``, the
path of ``POST /v1/deliveries/{id}/retry``. After each publish it writes the position and
``done`` and renews its lease in one statement that also checks it still holds the
claim; a replica that lost its claim stops at once.

Delivery is at least once: the publish and its progress write are one unit that a stop
(task cancelled) lets finish, so a graceful stop repeats nothing and the next replica
goes on from the next callback; a replica that dies between the two (kill -9) leaves the
last callback to be published again when its lease expires. Receivers dedupe on
``webhook-id``, which a redelivery keeps.

Publishing is paced at ``CALLBACKS_RECOVERY_RATE`` requests/s per replica, so a
recovery of a large window never crowds out fresh traffic at the dispatcher. Memory is
bounded by one page of rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from callbacks.logging import get_logger
from callbacks.models.outcomes import RedeliverRequest
from callbacks.settings import Settings
from prometheus_client import CollectorRegistry, Counter

log = get_logger(__name__)

PAGE_SIZE = 200
PROGRESS_LOG_INTERVAL_S = 10.0
PUBLISH_RETRY_S = 1.0  # after a failed publish (broker away), before trying it again
STOP_GRACE_S = 15.0  # a stop waits this long for the callback in hand (producer timeout+)
REDELIVERIES_TOTAL = "callbacks_recovery_redeliveries_total"

_CLAIM = """
UPDATE recoveries r
   SET claimed_by = $1, lease_until = now() + make_interval(secs => $2)
 WHERE r.id = (SELECT id FROM recoveries
                WHERE status = 'running' AND (lease_until IS NULL OR lease_until < now())
                ORDER BY created_at
                LIMIT 1
                FOR UPDATE SKIP LOCKED)
RETURNING r.id, r.account_id, r.profile_id, r.since, r.window_end, r.filter, r.total,
          r.done, r.after_at, r.after_id
"""

# One page of the window after the position; ``$6`` is the filter ('failed' or 'all').
# Callbacks whose event position is unknown cannot be redelivered and are not counted.
PAGE_SQL = """
SELECT delivery_id, event_id, attempt, first_attempted_at,
       source_topic, source_partition, source_offset
  FROM deliveries
 WHERE profile_id = $1 AND account_id = $2
   AND first_attempted_at >= $3 AND first_attempted_at < $4
   AND source_topic IS NOT NULL
   AND ($5 = 'all' OR status = 'failed')
   AND (first_attempted_at, delivery_id) > ($6, $7)
 ORDER BY first_attempted_at, delivery_id
 LIMIT $8
"""

_PROGRESS = """
UPDATE recoveries
   SET done = $3, after_at = $4, after_id = $5, lease_until = now() + make_interval(secs => $6)
 WHERE id = $1 AND claimed_by = $2 AND status = 'running'
"""

_FINISH = """
UPDATE recoveries
   SET status = 'done', finished_at = now(), claimed_by = NULL, lease_until = NULL
 WHERE id = $1 AND claimed_by = $2 AND status = 'running'
"""

_RELEASE = """
UPDATE recoveries SET claimed_by = NULL, lease_until = NULL
 WHERE id = $1 AND claimed_by = $2
"""

_START = datetime.min.replace(tzinfo=UTC)


class LeaseLost(Exception):
    """Another replica holds the recovery now (this one's lease expired)."""


@dataclass
class Claimed:
    id: uuid.UUID
    account_id: uuid.UUID
    profile_id: uuid.UUID
    since: datetime
    window_end: datetime
    filter: str
    total: int
    done: int
    after_at: datetime
    after_id: str

    @classmethod
    def of(cls, row: asyncpg.Record) -> Claimed:
        return cls(
            id=row["id"],
            account_id=row["account_id"],
            profile_id=row["profile_id"],
            since=row["since"],
            window_end=row["window_end"],
            filter=row["filter"],
            total=row["total"],
            done=row["done"],
            after_at=row["after_at"] or _START,
            after_id=row["after_id"] or "",
        )


class Pacer:
    """At most ``rate`` passes per second: :meth:`wait` returns when the next may go.

    A pause longer than one interval (a slow publish) is not made up with a burst.
    ``clock`` and ``sleep`` are parameters so its tests never sleep."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    async def wait(self) -> None:
        now = self._clock()
        if self._next is not None and self._next > now:
            await self._sleep(self._next - now)
            now = self._next
        self._next = now + self._interval


def replica_name() -> str:
    """Who holds a claim, for the row and the logs: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class RecoveryRunner:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        producer: AIOKafkaProducer,
        settings: Settings,
        registry: CollectorRegistry,
        name: str | None = None,
        progress_log_interval_s: float = PROGRESS_LOG_INTERVAL_S,
    ) -> None:
        self._pool = pool
        self._producer = producer
        self._topic = settings.topics.redeliver
        self._rate = settings.recovery_rate
        self._lease_s = settings.recovery_lease
        self._poll_s = settings.recovery_poll_interval
        self.name = name or replica_name()
        self._progress_log_interval_s = progress_log_interval_s
        self._wake = asyncio.Event()
        self._published = Counter(
            REDELIVERIES_TOTAL,
            "Redeliver requests published by bulk recoveries",
            registry=registry,
        )

    def wake(self) -> None:
        """A recovery was just created: look now instead of at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and work recoveries until cancelled; one at a time per replica."""
        while True:
            try:
                claimed = await self.claim()
            except asyncio.CancelledError:
                raise
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("recovery_claim_failed", error=repr(exc))
                claimed = None
            if claimed is None:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._poll_s)
                continue
            try:
                await self.work(claimed)
            except asyncio.CancelledError:
                raise
            except Exception:  # released by work(); this or another replica goes on later
                log.exception("recovery_failed", recovery_id=str(claimed.id))
                await asyncio.sleep(self._poll_s)

    async def claim(self) -> Claimed | None:
        row = await self._pool.fetchrow(_CLAIM, self.name, self._lease_s)
        return None if row is None else Claimed.of(row)

    async def work(self, job: Claimed) -> None:
        """Publish the rest of ``job``; on a stop (cancelled) the claim is released after
        the callback in hand is published and recorded, so nothing is sent twice."""
        log.info(
            "recovery_started" if job.done == 0 else "recovery_resumed",
            recovery_id=str(job.id),
            profile_id=str(job.profile_id),
            done=job.done,
            total=job.total,
            replica=self.name,
        )
        try:
            await self._pages(job)
        except LeaseLost:
            log.warning("recovery_lease_lost", recovery_id=str(job.id), done=job.done)
            return
        except BaseException:
            with contextlib.suppress(Exception):
                await asyncio.shield(self._pool.execute(_RELEASE, job.id, self.name))
            raise
        await self._pool.execute(_FINISH, job.id, self.name)
        log.info("recovery_done", recovery_id=str(job.id), done=job.done, total=job.total)

    async def _pages(self, job: Claimed) -> None:
        pacer = Pacer(self._rate)
        logged_at = time.monotonic()
        while True:
            rows = await self._pool.fetch(
                PAGE_SQL,
                job.profile_id,
                job.account_id,
                job.since,
                job.window_end,
                job.filter,
                job.after_at,
                job.after_id,
                PAGE_SIZE,
            )
            if not rows:
                return
            for row in rows:
                await pacer.wait()
                step = asyncio.ensure_future(self._step(job, row))
                try:
                    await asyncio.shield(step)
                except asyncio.CancelledError:
                    # Let the callback in hand be published and recorded, then stop.
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(step, STOP_GRACE_S)
                    raise
                if time.monotonic() - logged_at >= self._progress_log_interval_s:
                    logged_at = time.monotonic()
                    log.info(
                        "recovery_progress",
                        recovery_id=str(job.id),
                        done=job.done,
                        total=job.total,
                    )

    async def _step(self, job: Claimed, row: asyncpg.Record) -> None:
        """Publish one redeliver request (retried while the broker is away), then record
        it as done; LeaseLost when another replica holds the recovery now."""
        request = RedeliverRequest(
            delivery_id=row["delivery_id"],
            event_id=row["event_id"],
            account_id=str(job.account_id),
            profile_id=str(job.profile_id),
            source_topic=row["source_topic"],
            source_partition=row["source_partition"],
            source_offset=row["source_offset"],
            attempt=row["attempt"] + 1,
            requested_at=datetime.now(UTC),
        )
        while True:
            try:
                await self._producer.send_and_wait(
                    self._topic,
                    key=request.delivery_id.encode(),
                    value=request.model_dump_json().encode(),
                )
                break
            except KafkaError as exc:
                log.warning("recovery_publish_failed", recovery_id=str(job.id), error=repr(exc))
                await self._record(job)  # keeps the lease while the broker is away
                await asyncio.sleep(PUBLISH_RETRY_S)
        self._published.inc()
        job.done += 1
        job.after_at, job.after_id = row["first_attempted_at"], row["delivery_id"]
        await self._record(job)

    async def _record(self, job: Claimed) -> None:
        status = await self._pool.execute(
            _PROGRESS, job.id, self.name, job.done, job.after_at, job.after_id, self._lease_s
        )
        if status.endswith(" 0"):
            raise LeaseLost(str(job.id))
