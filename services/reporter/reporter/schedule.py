"""The report schedule: claim a period in the database, send its email, mark it sent.

A report is a ``report_runs`` row. For a scheduled one, the claim *is* the insert
(unique per account, kind and period start) with a lease; a replica may take a row over
only when its lease has expired and it was never marked sent, which is what happens
after a crash between claiming and sending. Two replicas racing therefore send one
email, and a dead sender's report is sent later by whoever ticks next. A send-now
request is a row the API inserted (kind ``now``), claimed the same way with
``FOR UPDATE SKIP LOCKED``; it reports the period so far and never blocks the
scheduled report of the same period.

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
from callbacks.logging import get_logger
from callbacks.settings import Settings

from reporter.mail import SEND_ERRORS, Mailer, build_message
from reporter.metrics import ReporterMetrics
from reporter.periods import Frequency, Period, last_closed_period, period_so_far
from reporter.report import ReportKind
from reporter.report_data import load_report

log = get_logger(__name__)

# The profile-api NOTIFYs this channel on send-now (profile_api.routes.reports).
REPORT_REQUESTS_CHANNEL = "callbacks_report_requests"
# A period is reported this long after it closes, so outcomes of its last seconds that
# are still on their way through the broker are counted.
DEFAULT_CLOSE_GRACE_S = 60.0
REQUESTS_PER_TICK = 20

_ENABLED = """
SELECT account_id, frequency, timezone, recipients
FROM report_settings
WHERE enabled AND cardinality(recipients) > 0
"""

_ALREADY_SENT = """
SELECT account_id, kind, period_start FROM report_runs
WHERE kind <> 'now' AND sent_at IS NOT NULL
  AND (account_id, kind, period_start) IN (
      SELECT * FROM unnest($1::uuid[], $2::text[], $3::timestamptz[]))
"""

_CLAIM_SCHEDULED = """
INSERT INTO report_runs AS r
    (account_id, kind, period_start, period_end, claimed_by, lease_until, claims)
VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6), 1)
ON CONFLICT (account_id, kind, period_start) WHERE kind <> 'now' DO UPDATE SET
    claimed_by = EXCLUDED.claimed_by,
    lease_until = EXCLUDED.lease_until,
    claims = r.claims + 1
WHERE r.sent_at IS NULL AND r.lease_until < now()
RETURNING id
"""

_CLAIM_REQUESTS = """
UPDATE report_runs AS r
SET claimed_by = $1, lease_until = now() + make_interval(secs => $2), claims = r.claims + 1
FROM report_settings s
WHERE r.id IN (
        SELECT id FROM report_runs
        WHERE kind = 'now' AND sent_at IS NULL AND (lease_until IS NULL OR lease_until < now())
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
        self._lease_s = settings.reporter_claim_lease_s
        self._wake = asyncio.Event()

    async def tick(self, now: datetime | None = None) -> int:
        """Send what is due at ``now``; return how many emails went out."""
        now = now or datetime.now(UTC)
        return await self.send_scheduled(now) + await self.send_requested()

    async def send_scheduled(self, now: datetime) -> int:
        accounts = await self._pool.fetch(_ENABLED)
        due: list[tuple[asyncpg.Record, Period]] = []
        for row in accounts:
            try:
                period = last_closed_period(row["frequency"], row["timezone"], now - self._grace)
            except (ValueError, KeyError) as exc:  # a zone this tzdata no longer knows
                self._metrics.report_failures.labels(stage="period").inc()
                log.warning(
                    "report_period_failed", account_id=str(row["account_id"]), error=repr(exc)
                )
                continue
            due.append((row, period))
        if not due:
            return 0
        sent_keys = {
            (r["account_id"], r["kind"], r["period_start"])
            for r in await self._pool.fetch(
                _ALREADY_SENT,
                [row["account_id"] for row, _ in due],
                [row["frequency"] for row, _ in due],
                [period.start for _, period in due],
            )
        }
        sent = 0
        for row, period in due:
            if (row["account_id"], row["frequency"], period.start) in sent_keys:
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
        message = build_message(data, self._mailer.sender, recipients)
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
        interval = self._settings.reporter_schedule_interval_s
        listener = await self._listen()
        try:
            while True:
                self._wake.clear()
                try:
                    await self.tick()
                except (asyncpg.PostgresError, OSError, asyncpg.InterfaceError) as exc:
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
