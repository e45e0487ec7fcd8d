"""A ``stale`` ending (``ordering: latest``) is stored like ``cancelled``: the delivery log
row shows it as final, and the counters count it beside delivered, failed, cancelled."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from reporter.outcome_store import write_batch

from tests.integration.reporter.helpers import create_profile, make_outcome

T0 = datetime(2026, 3, 1, 10, 7, tzinfo=UTC)


async def test_a_stale_ending_is_final_in_the_log_and_counted(
    pool: asyncpg.Pool, account: uuid.UUID
) -> None:
    profile = await create_profile(pool, account, "Latest wins")
    late = f"d-late-{account.hex[:8]}"  # attempt ids are unique across the database
    retried = make_outcome(
        account, profile, delivery_id=late, attempt=1, status="retrying", attempted_at=T0
    )
    stale = make_outcome(
        account,
        profile,
        delivery_id=late,
        attempt=2,
        status="stale",
        final=True,
        http_status=None,
        error="superseded by a newer status",
        attempted_at=T0 + timedelta(seconds=5),
    )
    await write_batch(pool, [retried, stale])
    await write_batch(pool, [stale])  # a replay changes nothing
    row = await pool.fetchrow(
        "SELECT status, final, attempt FROM deliveries WHERE delivery_id = $1", late
    )
    assert row is not None
    assert (row["status"], row["final"], row["attempt"]) == ("stale", True, 2)
    counted = await pool.fetchrow(
        "SELECT sum(stale) AS s, sum(failed) AS f, sum(delivered) AS d, sum(cancelled) AS c"
        " FROM delivery_counters WHERE account_id = $1",
        account,
    )
    assert counted is not None
    assert (counted["s"], counted["f"], counted["d"], counted["c"]) == (1, 0, 0, 0)
