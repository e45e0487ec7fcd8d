"""Reading one account's counts for one period from the final-outcome counters.

Counters are per UTC quarter-hour, and every local midnight of every real zone falls on
a quarter-hour, so ``bucket >= start AND bucket < end`` selects exactly the period and
``(bucket AT TIME ZONE zone)::date`` puts each bucket on the right local day.
"""

from __future__ import annotations

import uuid

import asyncpg

from reporter.periods import Period
from reporter.report import DayCounts, ProfileCounts, ReportData, ReportKind

_PER_PROFILE = """
SELECT c.profile_id, p.title, sum(c.delivered) AS delivered, sum(c.failed) AS failed
FROM delivery_counters c
LEFT JOIN callback_profiles p ON p.id = c.profile_id AND p.account_id = c.account_id
WHERE c.account_id = $1 AND c.bucket >= $2 AND c.bucket < $3
GROUP BY c.profile_id, p.title
ORDER BY p.title NULLS LAST, c.profile_id
"""

_PER_DAY = """
SELECT (c.bucket AT TIME ZONE $4)::date AS day,
       sum(c.delivered) AS delivered, sum(c.failed) AS failed
FROM delivery_counters c
WHERE c.account_id = $1 AND c.bucket >= $2 AND c.bucket < $3
GROUP BY 1
"""


async def load_report(
    pool: asyncpg.Pool, account_id: uuid.UUID, kind: ReportKind, period: Period
) -> ReportData:
    async with pool.acquire() as conn:
        name = await conn.fetchval("SELECT name FROM accounts WHERE id = $1", account_id)
        window = (account_id, period.start, period.end)
        profile_rows = await conn.fetch(_PER_PROFILE, *window)
        day_rows = await conn.fetch(_PER_DAY, *window, period.timezone)
    per_day = {row["day"]: row for row in day_rows}
    days = [
        DayCounts(
            day=day,
            delivered=int(per_day[day]["delivered"]) if day in per_day else 0,
            failed=int(per_day[day]["failed"]) if day in per_day else 0,
        )
        for day in period.days
    ]
    profiles = [
        ProfileCounts(
            profile_id=str(row["profile_id"]),
            title=row["title"] or f"(deleted profile {row['profile_id']})",
            delivered=int(row["delivered"]),
            failed=int(row["failed"]),
        )
        for row in profile_rows
    ]
    return ReportData(
        account_name=name or str(account_id),
        kind=kind,
        period=period,
        profiles=profiles,
        days=days,
    )
