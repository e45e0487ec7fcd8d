"""Ingest progress: how far the delivery log is known to be complete, per partition.

The report of a period must not go out before every outcome of that period is stored.
Ingest records, per partition of the outcomes topic, the newest record timestamp it has
stored and the last moment it was caught up with the partition's end offset. Either
says "every record that reached the broker before this instant is stored": records of
one partition arrive roughly in timestamp order, and a caught-up partition holds
nothing unread from before the moment its end offset was read. The *watermark* is the
smallest such instant over all partitions, so an idle partition (caught up, no new
records) keeps moving it forward and a lagging one holds it back.

The rows live in PostgreSQL, so every reporter replica sees the progress of the
partitions other replicas ingest; a partition no replica has reported yet (a row with
no progress) holds every report back until its owner does. Values only move forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class PartitionProgress:
    """What one ingest pass knows about one partition (None: nothing new)."""

    partition: int
    committed_offset: int | None = None
    end_offset: int | None = None
    record_time: datetime | None = None
    caught_up_at: datetime | None = None


_KNOWN = """
INSERT INTO ingest_progress (topic, partition)
SELECT $1, p FROM generate_series(0, $2 - 1) AS p
ORDER BY p
ON CONFLICT (topic, partition) DO NOTHING
"""

# A topic cannot lose partitions, but it can be deleted and made again with fewer: a row
# of a partition that no longer exists would hold every report back for good.
_GONE = "DELETE FROM ingest_progress WHERE topic = $1 AND partition >= $2"

_RECORD = """
INSERT INTO ingest_progress AS p
    (topic, partition, committed_offset, end_offset, record_time, caught_up_at)
SELECT $1, t.* FROM unnest($2::int[], $3::bigint[], $4::bigint[], $5::timestamptz[],
                           $6::timestamptz[]) AS t
ORDER BY 2
ON CONFLICT (topic, partition) DO UPDATE SET
    committed_offset = GREATEST(p.committed_offset, EXCLUDED.committed_offset),
    end_offset = GREATEST(p.end_offset, EXCLUDED.end_offset),
    record_time = GREATEST(p.record_time, EXCLUDED.record_time),
    caught_up_at = GREATEST(p.caught_up_at, EXCLUDED.caught_up_at),
    updated_at = now()
"""

_WATERMARK = """
SELECT count(*) AS partitions,
       count(*) FILTER (WHERE record_time IS NULL AND caught_up_at IS NULL) AS unknown,
       min(GREATEST(record_time, caught_up_at)) AS watermark
FROM ingest_progress WHERE topic = $1
"""


async def register_partitions(pool: asyncpg.Pool, topic: str, count: int) -> None:
    """Make sure every partition of ``topic`` (0 … count-1) has a row, and only those."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(_KNOWN, topic, count)
        await conn.execute(_GONE, topic, count)


async def record_progress(
    pool: asyncpg.Pool, topic: str, progress: Sequence[PartitionProgress]
) -> None:
    """Move the partitions' rows forward (a value never goes back)."""
    if not progress:
        return
    rows = sorted(progress, key=lambda p: p.partition)
    await pool.execute(
        _RECORD,
        topic,
        [p.partition for p in rows],
        [p.committed_offset for p in rows],
        [p.end_offset for p in rows],
        [p.record_time for p in rows],
        [p.caught_up_at for p in rows],
    )


async def ingest_watermark(pool: asyncpg.Pool, topic: str) -> datetime | None:
    """Every outcome that reached the broker before the returned instant is stored.

    None while nothing is known: no partition registered yet, or one not yet reported.
    """
    row = await pool.fetchrow(_WATERMARK, topic)
    if row is None or not row["partitions"] or row["unknown"]:
        return None
    watermark: datetime | None = row["watermark"]
    return watermark
