"""Profile auto-disable: streaks of final failures, and disabling a profile that is gone or failing.

The dispatcher holds no database: it publishes what it saw (outcome records). The
decision lives here, where the state is. Per profile we keep the start of the current
streak of final failures (reset by any delivered callback). Then, per batch of outcomes:

- a final ``410 Gone`` disables the profile at once (``endpoint_gone``);
- the first final failure of a streak queues a warning email, once per streak;
- a final failure attempted ``auto_disable_after`` or more after its streak began
  disables the profile (``failing``).

The check runs when outcomes are ingested, not on a timer: a profile that keeps failing
keeps producing final failures (every exhausted callback is one), and a profile that
stops receiving events has nothing left to protect. Times are attempt times, so a
replayed or delayed batch decides exactly as the live one did; the state moves only by
max/min and notices are unique per streak, so replays change nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import asyncpg
from callbacks.backoff import STORE_RETRY_S, Backoff, retry_until_done
from callbacks.db import DATABASE_ERRORS
from callbacks.logging import get_logger
from callbacks.models.outcomes import Outcome
from callbacks.models.profiles import DisabledReason
from callbacks.profile_state import disable_profile

from reporter.metrics import ReporterMetrics

log = get_logger(__name__)

GONE = 410
NoticeKind = str  # 'failing_warning' | 'disabled_failing' | 'disabled_gone'


@dataclass(frozen=True)
class Health:
    """One profile's streak state (a ``profile_health`` row)."""

    last_delivered_at: datetime | None = None
    failing_since: datetime | None = None
    last_failed_at: datetime | None = None
    quiet_until: datetime | None = None


@dataclass(frozen=True)
class Final:
    """A final outcome, reduced to what the health rules read."""

    at: datetime
    delivered: bool
    gone: bool


@dataclass(frozen=True)
class Decision:
    health: Health
    warn_since: datetime | None = None  # a new streak began at this time: warn once
    disable: DisabledReason | None = None
    evidence_at: datetime | None = None  # the attempt that justifies the disable


def _later(a: datetime | None, b: datetime | None) -> bool:
    """``a`` strictly after ``b`` (None is the beginning of time)."""
    return a is not None and (b is None or a > b)


def advance(health: Health, finals: Iterable[Final], disable_after: timedelta) -> Decision:
    """The new state and what to do about it. Pure; order of ``finals`` does not matter."""
    items = sorted(finals, key=lambda f: f.at)
    state = health
    for item in items:
        if item.delivered and _later(item.at, state.last_delivered_at):
            state = replace(state, last_delivered_at=item.at)
            if state.failing_since is not None and item.at >= state.failing_since:
                state = replace(state, failing_since=None)
    failures = [
        f
        for f in items
        if not f.delivered
        and _later(f.at, state.last_delivered_at)
        and _later(f.at, state.quiet_until)
    ]
    if not failures:
        return Decision(state)
    before = state.failing_since
    since = min(failures[0].at, before) if before is not None else failures[0].at
    last = max(failures[-1].at, state.last_failed_at or failures[-1].at)
    state = replace(state, failing_since=since, last_failed_at=last)
    gone = [f for f in failures if f.gone]
    if gone:
        return Decision(state, disable="endpoint_gone", evidence_at=gone[-1].at)
    if failures[-1].at - since >= disable_after:
        return Decision(state, disable="failing", evidence_at=failures[-1].at)
    return Decision(state, warn_since=since if before is None else None)


def finals_by_profile(outcomes: Iterable[Outcome]) -> dict[uuid.UUID, list[Final]]:
    """The batch's final outcomes, grouped by profile."""
    out: dict[uuid.UUID, list[Final]] = {}
    for o in outcomes:
        if not o.final or o.status in ("cancelled", "stale"):
            continue  # ended by a profile change, not by the receiver
        at = o.attempted_at if o.attempted_at.tzinfo else o.attempted_at.replace(tzinfo=UTC)
        delivered = o.status == "delivered"
        gone = not delivered and o.http_status == GONE
        out.setdefault(uuid.UUID(o.profile_id), []).append(Final(at, delivered, gone))
    return out


_LOCK = """
INSERT INTO profile_health (profile_id, account_id)
SELECT p.id, p.account_id FROM callback_profiles p WHERE p.id = ANY($1::uuid[])
ORDER BY p.id
ON CONFLICT (profile_id) DO NOTHING
"""

_READ = """
SELECT h.profile_id, h.account_id, h.last_delivered_at, h.failing_since, h.last_failed_at,
       h.quiet_until, p.enabled
FROM profile_health h JOIN callback_profiles p ON p.id = h.profile_id
WHERE h.profile_id = ANY($1::uuid[])
ORDER BY h.profile_id
FOR UPDATE OF h
"""

_WRITE = """
UPDATE profile_health SET last_delivered_at = $2, failing_since = $3, last_failed_at = $4,
       quiet_until = $5, updated_at = now()
WHERE profile_id = $1
"""

_NOTICE = """
INSERT INTO profile_notices (account_id, profile_id, kind, key_at, detail)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (profile_id, kind, key_at) DO NOTHING
RETURNING id
"""


class ProfileHealth:
    """Applies the health rules to each ingested batch, in its own transaction."""

    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        profiles_topic: str,
        disable_after_s: float,
        metrics: ReporterMetrics,
        on_notice: Callable[[], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._pool = pool
        self._topic = profiles_topic
        self._after = timedelta(seconds=disable_after_s)
        self._metrics = metrics
        self._on_notice = on_notice
        self._clock = clock

    async def apply_retrying(self, outcomes: list[Outcome]) -> None:
        """``apply``, retried with backoff like the batch store: the offsets wait for it."""

        def failed(exc: BaseException, delay_s: float) -> None:
            self._metrics.ingest_errors.labels(stage="health").inc()
            log.warning("profile_health_failed", error=repr(exc), retry_in_s=delay_s)

        await retry_until_done(
            lambda: self.apply(outcomes),
            retry_on=DATABASE_ERRORS,
            backoff=Backoff(STORE_RETRY_S),
            on_error=failed,
        )

    async def apply(self, outcomes: Iterable[Outcome]) -> int:
        """Update streaks, disable and queue notices; return how many notices were queued."""
        grouped = finals_by_profile(outcomes)
        if not grouped:
            return 0
        ids = sorted(grouped)
        queued = 0
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(_LOCK, ids)
            for row in await conn.fetch(_READ, ids):
                queued += await self._one(conn, row, grouped[row["profile_id"]])
        if queued and self._on_notice is not None:
            self._on_notice()
        return queued

    async def _one(self, conn: asyncpg.Connection, row: asyncpg.Record, finals: list[Final]) -> int:
        health = Health(
            row["last_delivered_at"],
            row["failing_since"],
            row["last_failed_at"],
            row["quiet_until"],
        )
        if not row["enabled"]:
            # A disabled profile's stray failures (in flight when it was disabled) start
            # no streak; its successes still count.
            finals = [f for f in finals if f.delivered]
        decision = advance(health, finals, self._after)
        state = decision.health
        profile_id, account_id = row["profile_id"], row["account_id"]
        notices: list[tuple[NoticeKind, datetime, str]] = []
        if decision.disable is not None and decision.evidence_at is not None:
            now = self._clock()
            if await disable_profile(
                conn,
                profile_id=profile_id,
                reason=decision.disable,
                evidence_at=decision.evidence_at,
                now=now,
                topic=self._topic,
            ):
                kind = (
                    "disabled_gone" if decision.disable == "endpoint_gone" else "disabled_failing"
                )
                notices.append((kind, decision.evidence_at, decision.disable))
                self._metrics.profiles_disabled.labels(reason=decision.disable).inc()
                log.warning(
                    "profile_disabled",
                    profile_id=str(profile_id),
                    account_id=str(account_id),
                    reason=decision.disable,
                    failing_since=state.failing_since.isoformat() if state.failing_since else None,
                )
            # Disabled now or already: the streak ends; what is still in flight is ignored.
            state = replace(state, failing_since=None, quiet_until=state.last_failed_at)
        elif decision.warn_since is not None:
            notices.append(("failing_warning", decision.warn_since, "failing"))
        await conn.execute(
            _WRITE,
            profile_id,
            state.last_delivered_at,
            state.failing_since,
            state.last_failed_at,
            state.quiet_until,
        )
        queued = 0
        for kind, key_at, detail in notices:
            if await conn.fetchval(_NOTICE, account_id, profile_id, kind, key_at, detail):
                queued += 1
        return queued
