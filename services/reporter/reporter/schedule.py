"""The report schedule: claim a period in the database, send its email, mark it sent.

A report is a ``report_runs`` row. For a scheduled one, the claim *is* the insert
(unique per account, kind and period start) with a lease; a replica may take a row over
only when its lease has expired and it was never marked sent, which is what happens
after a crash between claiming and sending. Two replicas racing therefore send one
email, and a dead sender's report is sent later by whoever ticks next. A send-now
request is a row the API inserted (kind ``now``), claimed the same way with
``FOR UPDATE SKIP LOCKED``; it reports the period so far and never blocks the
scheduled report of the same period.

Which periods are due: the closed ones among the ``reporter_catch_up_periods`` most
recent, oldest first, that have not been sent, so every period an outage skipped is
reported once the reporter is back. Only the most recent one is owed when the account's
schedule changed since (``report_settings.schedule_since``: enabled again, another
frequency or zone), so turning reports on never sends a backlog. A period is held back
until ingest has stored every outcome that reached the broker up to ``close_grace`` after
its end (the watermark of ``reporter.progress``), so a reporter that was down or lagging
across a period's end reports the whole period, not what it had stored by then.

The SMTP conversation is bounded as a whole well inside the claim lease
(``reporter.mail``), so a live sender is never overtaken by a second replica. A report
whose email cannot be built is set aside (``failed_at``, with the reason) instead of
failing every tick.

The one gap left is a crash after the relay accepted the email and before ``sent_at``
is written: that report is sent again after the lease (at-least-once, like SMTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from callbacks.db import DATABASE_ERRORS
from callbacks.logging import get_logger
from callbacks.settings import Settings

from reporter.mail import BUILD_ERRORS, SEND_ERRORS, Mailer, build_message
from reporter.metrics import ReporterMetrics
from reporter.periods import Frequency, Period, closed_periods, period_so_far
from reporter.progress import ingest_watermark
from reporter.report import ReportKind
from reporter.report_data import load_report

log = get_logger(__name__)

# The profile-api NOTIFYs this channel on send-now (profile_api.routes.reports).
REPORT_REQUESTS_CHANNEL = "callbacks_report_requests"
# A period is reported once ingest has stored what reached the broker up to this long
# after its end: an outcome is produced just after its attempt, but several dispatcher
# replicas' records interleave in a partition and their clocks differ a little.
DEFAULT_CLOSE_GRACE_S = 60.0
REQUESTS_PER_TICK = 20
# Sent (or set aside) runs are looked up this far back: the longest catch-up window.
_LONGEST_PERIOD = timedelta(days=31)

_ENABLED = """
SELECT s.account_id, s.frequency, s.timezone, s.recipients, s.schedule_since,
       ARRAY(SELECT r.period_start FROM report_runs r
             WHERE r.account_id = s.account_id AND r.kind = s.frequency
               AND (r.sent_at IS NOT NULL OR r.failed_at IS NOT NULL)
               AND r.period_start >= $1) AS done
FROM report_settings s
WHERE s.enabled AND cardinality(s.recipients) > 0
ORDER BY s.account_id
"""

_CLAIM_SCHEDULED = """
INSERT INTO report_runs AS r
    (account_id, kind, period_start, period_end, claimed_by, lease_until, claims)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), 1)
ON CONFLICT (account_id, kind, period_start) WHERE kind <> 'now' DO UPDATE SET
    claimed_by = EXCLUDED.claimed_by,
    lease_until = EXCLUDED.lease_until,
    claims = r.claims + 1
WHERE r.sent_at IS NULL AND r.failed_at IS NULL AND r.lease_until < now()
RETURNING id
"""

_CLAIM_REQUESTS = """
UPDATE report_runs AS r
SET claimed_by = $1, lease_until = now() + make_interval(secs => $2), claims = r.claims + 1
FROM report_settings s
WHERE r.id IN (
        SELECT id FROM report_runs
        WHERE kind = 'now' AND sent_at IS NULL AND failed_at IS NULL
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY id
        LIMIT $3
        FOR UPDATE SKIP LOCKED)
  AND s.account_id = r.account_id
RETURNING r.id, r.account_id, r.requested_at, s.frequency, s.timezone, s.recipients
"""


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Scheduler:
    """One ``tick`` looks at every enabled account and every pending send-now request."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        metrics: ReporterMetrics,
        *,
        mailer: Mailer | None = None,
        replica: str | None = None,
        close_grace_s: float = DEFAULT_CLOSE_GRACE_S,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._metrics = metrics
        self._mailer = mailer or Mailer(settings)
        self.replica = replica or replica_name()
        self._grace = timedelta(seconds=close_grace_s)
        self._lease_s = settings.reporter_claim_lease
        self._catch_up = settings.reporter_catch_up_periods
        self._wake = asyncio.Event()

    async def tick(self, now: datetime | None = None) -> int:
        """Send what is due at ``now``; return how many emails went out."""
        now = now or datetime.now(UTC)
        return await self.send_scheduled(now) + await self.send_requested()

    def owed(self, row: asyncpg.Record, now: datetime) -> list[Period]:
        """The account's closed periods not yet sent, oldest first (see the module doc)."""
        periods = closed_periods(row["frequency"], row["timezone"], now, self._catch_up)
        done = set(row["done"])
        return [
            p
            for i, p in enumerate(periods)
            if p.start not in done and (i == len(periods) - 1 or p.end > row["schedule_since"])
        ]

    async def send_scheduled(self, now: datetime) -> int:
        lookback = now - _LONGEST_PERIOD * (self._catch_up + 1)
        accounts = await self._pool.fetch(_ENABLED, lookback)
        due: list[tuple[asyncpg.Record, Period]] = []
        for row in accounts:
            try:
                periods = self.owed(row, now)
            except (ValueError, KeyError) as exc:  # a zone this tzdata no longer knows
                self._metrics.report_failures.labels(stage="period").inc()
                log.warning(
                    "report_period_failed", account_id=str(row["account_id"]), error=repr(exc)
                )
                continue
            due.extend((row, period) for period in periods)
        if not due:
            return 0
        watermark = await ingest_watermark(self._pool, self._settings.topics.outcomes)
        ready = min(now, watermark) if watermark is not None else None

        def passed(period: Period) -> bool:
            return ready is not None and period.end + self._grace <= ready

        held = [period for _, period in due if not passed(period)]
        if held:
            log.info(
                "reports_waiting_for_ingest",
                held=len(held),
                oldest_end=min(p.end for p in held).isoformat(),
                watermark=watermark.isoformat() if watermark else None,
            )
        sent = 0
        for row, period in due:
            if not passed(period):
                continue
            run_id = await self._pool.fetchval(
                _CLAIM_SCHEDULED,
                row["account_id"],
                row["frequency"],
                period.start,
                period.end,
                self.replica,
                self._lease_s,
            )
            if run_id is None:
                continue  # sent already, or another replica holds a live claim
            if await self._send(
                run_id, row["account_id"], row["frequency"], period, row["recipients"]
            ):
                sent += 1
        return sent

    async def send_requested(self) -> int:
        sent = 0
        claimed = await self._pool.fetch(
            _CLAIM_REQUESTS, self.replica, self._lease_s, REQUESTS_PER_TICK
        )
        for row in claimed:
            frequency: Frequency = row["frequency"]
            period = period_so_far(frequency, row["timezone"], row["requested_at"])
            await self._pool.execute(
                "UPDATE report_runs SET period_start = $2, period_end = $3 WHERE id = $1",
                row["id"],
                period.start,
                period.end,
            )
            if await self._send(row["id"], row["account_id"], "now", period, row["recipients"]):
                sent += 1
        return sent

    async def _send(
        self,
        run_id: int,
        account_id: uuid.UUID,
        kind: ReportKind,
        period: Period,
        recipients: Sequence[str],
    ) -> bool:
        bound: dict[str, Any] = {"account_id": str(account_id), "kind": kind, "run_id": run_id}
        data = await load_report(self._pool, account_id, kind, period)
        try:
            message = build_message(data, self._mailer.sender, recipients)
        except BUILD_ERRORS as exc:
            # Retrying cannot help (a header the account's data makes invalid): set the
            # run aside with its reason instead of failing on it every tick.
            self._metrics.report_failures.labels(stage="build").inc()
            log.warning("report_set_aside", error=repr(exc), **bound)
            await self._pool.execute(
                "UPDATE report_runs SET failed_at = now(), last_error = $3"
                " WHERE id = $1 AND claimed_by = $2",
                run_id,
                self.replica,
                repr(exc)[:500],
            )
            return False
        try:
            await self._mailer.send(message, recipients)
        except SEND_ERRORS as exc:
            # Release the claim so the next tick (here or on another replica) retries.
            self._metrics.report_failures.labels(stage="smtp").inc()
            log.warning("report_send_failed", error=repr(exc), **bound)
            await self._pool.execute(
                "UPDATE report_runs SET lease_until = now(), last_error = $3"
                " WHERE id = $1 AND claimed_by = $2",
                run_id,
                self.replica,
                repr(exc)[:500],
            )
            return False
        # The relay has the email: recording that must survive a shutdown's cancellation,
        # or the report would be sent again when the lease expires.
        marking = asyncio.ensure_future(
            self._pool.execute(
                "UPDATE report_runs SET sent_at = now(), last_error = NULL WHERE id = $1", run_id
            )
        )
        try:
            await asyncio.shield(marking)
        except asyncio.CancelledError:
            await marking
            raise
        self._metrics.reports_sent.labels(kind=kind).inc()
        log.info(
            "report_sent",
            first_day=period.first_day.isoformat(),
            last_day=period.last_day.isoformat(),
            delivered=data.delivered,
            failed=data.failed,
            recipients=len(recipients),
            **bound,
        )
        return True

    async def run(self) -> None:
        """Tick every ``reporter_schedule_interval``, or at once when send-now NOTIFYs."""
        interval = self._settings.reporter_schedule_interval
        listener = await self._listen()
        try:
            while True:
                self._wake.clear()
                try:
                    await self.tick()
                except DATABASE_ERRORS as exc:
                    self._metrics.report_failures.labels(stage="tick").inc()
                    log.warning("report_tick_failed", error=repr(exc))
                if listener is None or listener.is_closed():
                    listener = await self._listen()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), interval)
        finally:
            if listener is not None and not listener.is_closed():
                await listener.close()

    async def _listen(self) -> asyncpg.Connection | None:
        """A connection LISTENing for send-now; without it the interval still polls."""
        conn: asyncpg.Connection | None = None
        try:
            conn = await asyncpg.connect(self._settings.require_database_url())
            await conn.add_listener(REPORT_REQUESTS_CHANNEL, self._notified)
        except (asyncpg.PostgresError, OSError) as exc:
            self._metrics.report_failures.labels(stage="listen").inc()
            log.warning("report_listen_failed", error=repr(exc))
            if conn is not None:
                await conn.close()
            return None
        return conn

    def _notified(self, *_args: object) -> None:
        self._wake.set()
