"""The outbox relay: profile changes from PostgreSQL to the ``callbacks.profiles`` topic.

Every change commits a row in ``profile_outbox`` and a ``NOTIFY``; the relay LISTENs on
its own connection, so it wakes at commit (a change governs deliveries within 1 s) and
also polls every ``outbox_poll_interval`` in case a notification was missed.

Each row names its topic and a relay publishes only its own topic's rows, so
deployments with different topic prefixes may share a database. One relay per topic
publishes at a time across replicas: it holds a session-level advisory lock on its
connection; if that connection dies, PostgreSQL releases the lock and another
replica (or this one, reconnected) takes over. Rows go out in id order, keyed by
profile id, and ``published_at`` is stamped only for the contiguous prefix the broker
acknowledged. After a failure the relay starts again from the first unacknowledged
row, re-sending anything acknowledged after it, so the last record of each key on the
topic is always the latest change (at-least-once; consumers let the last record win).

A row the broker can never take (a document over the producer's ``max_request_size``,
or one the broker refuses as too large when sent alone) is set aside: ``failed_at`` and
``last_error`` are stored, ``callbacks_outbox_failed_total`` counts it, a log line names
it, and the relay goes on with later rows. The dispatchers then keep that profile's
previous version until a later change of it that fits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError
from callbacks.backoff import Backoff, retry_until_done
from callbacks.db import DATABASE_ERRORS
from callbacks.logging import get_logger
from prometheus_client import CollectorRegistry, Counter, Gauge

from profile_api.store import OUTBOX_CHANNEL

log = get_logger(__name__)

OUTBOX_PENDING = "callbacks_outbox_pending"
OUTBOX_PUBLISHED = "callbacks_outbox_published_total"
OUTBOX_ERRORS = "callbacks_outbox_errors_total"
OUTBOX_FAILED = "callbacks_outbox_failed_total"

RELAY_LOCK_CLASS = 0x43424F55  # "CBOU"; the second lock key is a hash of the topic
BATCH_SIZE = 500
BACKOFF_MIN_S = 0.2
BACKOFF_MAX_S = 5.0
# Published rows are kept a while for inspection, then deleted so the table stays small.
RETENTION = "7 days"
PRUNE_EVERY_S = 3600.0


class OutboxMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.pending = Gauge(
            OUTBOX_PENDING, "Profile changes not yet published to the topic.", registry=registry
        )
        self.published = Counter(
            OUTBOX_PUBLISHED, "Profile changes published to the topic.", registry=registry
        )
        self.errors = Counter(
            OUTBOX_ERRORS,
            "Outbox relay failures, by stage (database or broker).",
            ["stage"],
            registry=registry,
        )
        self.failed = Counter(
            OUTBOX_FAILED,
            "Profile changes set aside because the broker can never take them (too large).",
            registry=registry,
        )


class OutboxRelay:
    """Publishes pending outbox rows; run it as a task and cancel it to stop."""

    def __init__(
        self,
        *,
        dsn: str,
        producer: AIOKafkaProducer,
        topic: str,
        poll_interval_s: float,
        metrics: OutboxMetrics,
    ) -> None:
        self._dsn = dsn
        self._producer = producer
        self._topic = topic
        self._poll_interval_s = poll_interval_s
        self._metrics = metrics
        self._wake = asyncio.Event()
        self._pruned_at = 0.0

    async def run(self) -> None:
        """Forever: connect, take the lock, publish; reconnect with backoff on failure."""

        def failed(exc: BaseException, delay_s: float) -> None:
            self._metrics.errors.labels(stage="database").inc()
            log.warning("outbox_database_error", error=repr(exc), retry_in_s=delay_s)

        # A session returns only by raising: a failed one is started again.
        await retry_until_done(
            self._session,
            retry_on=DATABASE_ERRORS,
            backoff=Backoff.doubling(BACKOFF_MIN_S, BACKOFF_MAX_S),
            on_error=failed,
        )

    def _notified(self, *_args: Any) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        """Wait for a notification or ``seconds``, whichever comes first."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    async def _session(self) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self._dsn)
        try:
            await conn.add_listener(OUTBOX_CHANNEL, self._notified)
            conn.add_termination_listener(self._notified)
            while not await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, hashtext($2))", RELAY_LOCK_CLASS, self._topic
            ):
                await self._update_pending(conn)
                self._wake.clear()
                await self._sleep(self._poll_interval_s)
            log.info("outbox_relay_leader")
            # The topic's metadata now, so the first change after a start is not the one
            # that waits for it (on a replicated cluster that is a round trip or more).
            with contextlib.suppress(KafkaError):
                await self._producer.partitions_for(self._topic)
            backoff = Backoff.doubling(BACKOFF_MIN_S, BACKOFF_MAX_S)
            while True:
                if conn.is_closed():
                    raise asyncpg.InterfaceError("outbox relay connection closed")
                self._wake.clear()
                # Counted before publishing too, so the gauge shows a backlog that builds
                # up while a publish is stuck waiting for the broker.
                await self._update_pending(conn)
                try:
                    await self._drain(conn)
                except KafkaError as exc:
                    self._metrics.errors.labels(stage="broker").inc()
                    log.warning("outbox_publish_failed", error=repr(exc), retry_in_s=backoff.next_s)
                    await self._update_pending(conn)
                    await backoff.wait()
                    continue
                backoff.reset()
                await self._update_pending(conn)
                await self._prune(conn)
                await self._sleep(self._poll_interval_s)
        finally:
            with contextlib.suppress(OSError, asyncpg.InterfaceError):
                # Closing the session releases the advisory lock for another replica.
                await asyncio.shield(conn.close(timeout=2))

    async def _prune(self, conn: asyncpg.Connection) -> None:
        now = time.monotonic()
        if now - self._pruned_at < PRUNE_EVERY_S:
            return
        self._pruned_at = now
        status = await conn.execute(
            f"""DELETE FROM profile_outbox
                WHERE topic = $1 AND (published_at < now() - interval '{RETENTION}'
                                      OR failed_at < now() - interval '{RETENTION}')""",  # noqa: S608
            self._topic,
        )
        log.info("outbox_pruned", status=status)

    async def _update_pending(self, conn: asyncpg.Connection) -> None:
        count = await conn.fetchval(
            "SELECT count(*) FROM profile_outbox"
            " WHERE topic = $1 AND published_at IS NULL AND failed_at IS NULL",
            self._topic,
        )
        self._metrics.pending.set(count)

    async def _drain(self, conn: asyncpg.Connection) -> None:
        """Publish every pending row in id order, a batch at a time."""
        while True:
            rows = await conn.fetch(
                """SELECT id, profile_id, payload::text AS payload FROM profile_outbox
                   WHERE topic = $1 AND published_at IS NULL AND failed_at IS NULL
                   ORDER BY id LIMIT $2""",
                self._topic,
                BATCH_SIZE,
            )
            if not rows:
                return
            done = await self._publish(rows)
            if done.acked:
                await conn.execute(
                    "UPDATE profile_outbox SET published_at = now() WHERE id = ANY($1::bigint[])",
                    done.acked,
                )
                self._metrics.published.inc(len(done.acked))
            if done.failed:
                await self._set_aside(conn, rows, done.failed)
            if done.error is not None:
                raise done.error
            if done.complete and len(rows) < BATCH_SIZE:
                return

    async def _set_aside(
        self, conn: asyncpg.Connection, rows: list[asyncpg.Record], failed: dict[int, str]
    ) -> None:
        await conn.execute(
            """UPDATE profile_outbox AS o SET failed_at = now(), last_error = f.reason
               FROM unnest($1::bigint[], $2::text[]) AS f(id, reason) WHERE o.id = f.id""",
            list(failed),
            list(failed.values()),
        )
        self._metrics.failed.inc(len(failed))
        for row in rows:
            if row["id"] in failed:
                log.error(
                    "outbox_row_set_aside",
                    outbox_id=row["id"],
                    profile_id=str(row["profile_id"]),
                    size=len(row["payload"] or ""),
                    reason=failed[row["id"]],
                )

    async def _publish(self, rows: list[asyncpg.Record]) -> _Published:
        """Send ``rows`` in order and say how far they got (see ``_Published``)."""
        futures: list[asyncio.Future[Any] | None] = []
        failed: dict[int, str] = {}
        error: KafkaError | None = None
        for row in rows:
            try:
                futures.append(await self._send(row))
            except MessageSizeTooLargeError as exc:
                # Refused before it was queued: nothing of it is on the topic, so the
                # rows after it keep their order.
                failed[row["id"]] = _reason(exc)
                futures.append(None)
            except KafkaError as exc:
                error = exc
                break
        results = await asyncio.gather(
            *(f for f in futures if f is not None), return_exceptions=True
        )
        outcome = iter(results)
        acked: list[int] = []
        for row, future in zip(rows, futures, strict=False):
            if future is None:
                continue  # set aside above
            result = next(outcome)
            if isinstance(result, asyncio.CancelledError):
                raise result
            if isinstance(result, MessageSizeTooLargeError):
                # The broker refused the batch this row was in; alone, it either goes
                # (a neighbour was too large) or is the one set aside. Either way this
                # pass stops here: the rows after it may have been acknowledged in a
                # later batch, and must be sent again after it to keep the order.
                try:
                    await (await self._send(row))
                except MessageSizeTooLargeError as exc:
                    failed[row["id"]] = _reason(exc)
                except KafkaError as exc:
                    return _Published(acked, failed, exc, complete=False)
                else:
                    acked.append(row["id"])
                return _Published(acked, failed, None, complete=False)
            if isinstance(result, BaseException):
                error = result if isinstance(result, KafkaError) else KafkaError(repr(result))
                break
            acked.append(row["id"])
        return _Published(acked, failed, error, complete=error is None)

    async def _send(self, row: asyncpg.Record) -> asyncio.Future[Any]:
        value = None if row["payload"] is None else row["payload"].encode()
        future: asyncio.Future[Any] = await self._producer.send(
            self._topic, key=str(row["profile_id"]).encode(), value=value
        )
        return future


@dataclass(frozen=True)
class _Published:
    """How far one pass over a batch of rows got.

    ``acked``: rows on the topic, a prefix of the batch but for set-aside rows;
    ``failed``: rows set aside, with the reason; ``error``: what stopped the pass, to
    retry with backoff; ``complete``: every row of the batch was acked or set aside.
    """

    acked: list[int]
    failed: dict[int, str]
    error: KafkaError | None
    complete: bool


def _reason(exc: KafkaError) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]
