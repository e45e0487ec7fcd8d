"""Writing a batch of outcome records: one statement, one transaction, idempotent.

The whole batch goes to PostgreSQL as arrays (``unnest``) in a single statement whose
data-modifying CTEs insert the attempts (``ON CONFLICT DO NOTHING``), then update the
per-callback rows and the counters from the attempts that were *actually* inserted
(``RETURNING``). A replayed batch therefore inserts no attempt and changes nothing else:
at-least-once consumption becomes exactly-once storage.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import Any

import asyncpg
from callbacks.models.outcomes import Outcome

# Counters use quarter-hour UTC buckets (date_bin '15 minutes' below): every real time
# zone's offset is a multiple of 15 minutes, so a bucket never straddles a local
# midnight and a local day, week or month sums whole buckets.
_WRITE_BATCH = """
WITH incoming AS (
    SELECT DISTINCT ON (attempt_id) *
    FROM unnest(
        $1::text[], $2::text[], $3::text[], $4::uuid[], $5::uuid[], $6::text[], $7::text[],
        $8::int[], $9::text[], $10::bool[], $11::int[], $12::text[], $13::float8[],
        $14::timestamptz[], $15::text[], $16::int[], $17::bigint[]
    ) AS t(attempt_id, delivery_id, event_id, account_id, profile_id, channel, event,
           attempt, status, final, http_status, error, latency_ms, attempted_at,
           source_topic, source_partition, source_offset)
    ORDER BY attempt_id
),
inserted AS (
    INSERT INTO delivery_attempts (
        attempt_id, delivery_id, event_id, account_id, profile_id, channel, event,
        attempt, status, final, http_status, error, latency_ms, attempted_at)
    SELECT attempt_id, delivery_id, event_id, account_id, profile_id, channel, event,
           attempt, status, final, http_status, error, latency_ms, attempted_at
    FROM incoming
    ON CONFLICT (attempt_id) DO NOTHING
    RETURNING attempt_id
),
fresh AS (
    SELECT incoming.* FROM incoming JOIN inserted USING (attempt_id)
),
latest AS (
    SELECT DISTINCT ON (delivery_id) *,
           min(attempted_at) OVER (PARTITION BY delivery_id) AS first_at,
           max(attempted_at) OVER (PARTITION BY delivery_id) AS last_at
    FROM fresh
    ORDER BY delivery_id, attempt DESC, attempted_at DESC
),
upserted AS (
    INSERT INTO deliveries AS d (
        delivery_id, account_id, profile_id, event_id, event, channel, attempt, attempt_id,
        status, final, http_status, error, latency_ms, first_attempted_at,
        last_attempted_at, source_topic, source_partition, source_offset)
    SELECT delivery_id, account_id, profile_id, event_id, event, channel, attempt,
           attempt_id, status, final, http_status, error, latency_ms, first_at, last_at,
           source_topic, source_partition, source_offset
    FROM latest
    ORDER BY delivery_id
    ON CONFLICT (delivery_id) DO UPDATE SET
        first_attempted_at = LEAST(d.first_attempted_at, EXCLUDED.first_attempted_at),
        last_attempted_at = GREATEST(d.last_attempted_at, EXCLUDED.last_attempted_at),
        attempt = GREATEST(d.attempt, EXCLUDED.attempt),
        attempt_id = CASE WHEN EXCLUDED.attempt >= d.attempt
                          THEN EXCLUDED.attempt_id ELSE d.attempt_id END,
        status = CASE WHEN EXCLUDED.attempt >= d.attempt
                      THEN EXCLUDED.status ELSE d.status END,
        final = CASE WHEN EXCLUDED.attempt >= d.attempt
                     THEN EXCLUDED.final ELSE d.final END,
        http_status = CASE WHEN EXCLUDED.attempt >= d.attempt
                           THEN EXCLUDED.http_status ELSE d.http_status END,
        error = CASE WHEN EXCLUDED.attempt >= d.attempt
                     THEN EXCLUDED.error ELSE d.error END,
        latency_ms = CASE WHEN EXCLUDED.attempt >= d.attempt
                          THEN EXCLUDED.latency_ms ELSE d.latency_ms END,
        source_topic = COALESCE(d.source_topic, EXCLUDED.source_topic),
        source_partition = CASE WHEN d.source_topic IS NULL
                                THEN EXCLUDED.source_partition ELSE d.source_partition END,
        source_offset = CASE WHEN d.source_topic IS NULL
                             THEN EXCLUDED.source_offset ELSE d.source_offset END
    RETURNING 1
),
-- A callback counts once, by its latest final state: a redelivery of a callback that
-- had failed finally moves its count rather than adding a second one. ``prior`` reads
-- the statement's snapshot, i.e. the deliveries rows before this batch's upsert.
prior AS (
    SELECT d.delivery_id, d.account_id, d.profile_id, d.status, d.final, d.attempt,
           d.last_attempted_at
    FROM deliveries d JOIN latest l USING (delivery_id)
),
changes AS (
    SELECT l.account_id, l.profile_id, l.attempted_at AS at, l.status, 1 AS delta
    FROM latest l LEFT JOIN prior p USING (delivery_id)
    WHERE l.final AND (p.delivery_id IS NULL OR l.attempt >= p.attempt)
    UNION ALL
    SELECT p.account_id, p.profile_id, p.last_attempted_at, p.status, -1
    FROM prior p JOIN latest l USING (delivery_id)
    WHERE p.final AND l.attempt >= p.attempt
),
counted AS (
    INSERT INTO delivery_counters AS c (
        account_id, profile_id, bucket, delivered, failed, cancelled, stale)
    SELECT account_id, profile_id,
           date_bin('15 minutes', at, TIMESTAMPTZ '2000-01-01 00:00:00+00'),
           coalesce(sum(delta) FILTER (WHERE status = 'delivered'), 0),
           coalesce(sum(delta) FILTER (WHERE status = 'failed'), 0),
           coalesce(sum(delta) FILTER (WHERE status = 'cancelled'), 0),
           coalesce(sum(delta) FILTER (WHERE status = 'stale'), 0)
    FROM changes
    GROUP BY 1, 2, 3
    ORDER BY 1, 3, 2
    ON CONFLICT (account_id, bucket, profile_id) DO UPDATE SET
        delivered = c.delivered + EXCLUDED.delivered,
        failed = c.failed + EXCLUDED.failed,
        cancelled = c.cancelled + EXCLUDED.cancelled,
        stale = c.stale + EXCLUDED.stale
    RETURNING 1
)
SELECT (SELECT count(*) FROM inserted) AS inserted
"""


@dataclass(frozen=True)
class BatchResult:
    received: int
    inserted: int

    @property
    def duplicates(self) -> int:
        return self.received - self.inserted


def _columns(outcomes: list[Outcome]) -> list[list[Any]]:
    """The batch as one list per column, in the order of the statement's parameters."""
    columns: list[list[Any]] = [[] for _ in range(17)]
    for o in outcomes:
        attempted_at = o.attempted_at
        if attempted_at.tzinfo is None:
            attempted_at = attempted_at.replace(tzinfo=UTC)
        row = (
            o.attempt_id,
            o.delivery_id,
            o.event_id,
            uuid.UUID(o.account_id),
            uuid.UUID(o.profile_id),
            o.channel,
            o.event,
            o.attempt,
            o.status,
            o.final,
            o.http_status,
            o.error,
            o.latency_ms,
            attempted_at,
            o.source_topic,
            o.source_partition,
            o.source_offset,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    return columns


async def write_batch(pool: asyncpg.Pool, outcomes: list[Outcome]) -> BatchResult:
    """Store a batch in one transaction; return how many attempts were new."""
    if not outcomes:
        return BatchResult(received=0, inserted=0)
    async with pool.acquire() as conn, conn.transaction():
        inserted: int = await conn.fetchval(_WRITE_BATCH, *_columns(outcomes))
    return BatchResult(received=len(outcomes), inserted=inserted)
