"""Profile health emails: the warning when a profile starts failing, and the disable notice.

``reporter.auto_disable`` writes a ``profile_notices`` row in the transaction that decided it
(an outbox for emails); this sends the pending ones to the account's report recipients
(``report_settings.recipients``, whether or not periodic reports are enabled: a
disabled profile matters even to an account that reads no reports). A row is claimed
with a lease like a report run, so several replicas send each notice once; a failed send
releases the claim and is retried on the next pass. An account with no recipients gets
its notices marked sent with ``last_error = 'no recipients'``. A notice whose email cannot
be built (a CR or LF in the profile's title cannot go into a subject) is set aside:
``failed_at`` and the reason are stored, counted and logged, and the pass goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import asyncpg
from callbacks.db import DATABASE_ERRORS
from callbacks.logging import get_logger
from callbacks.settings import Settings

from reporter.mail import BUILD_ERRORS, SEND_ERRORS, Mailer
from reporter.metrics import ReporterMetrics
from reporter.schedule import replica_name

log = get_logger(__name__)

BATCH = 50

_CLAIM = """
UPDATE profile_notices AS n
SET claimed_by = $1, lease_until = now() + make_interval(secs => $2), claims = n.claims + 1
WHERE n.id IN (
        SELECT id FROM profile_notices
        WHERE sent_at IS NULL AND failed_at IS NULL
          AND (lease_until IS NULL OR lease_until < now())
        ORDER BY id LIMIT $3
        FOR UPDATE SKIP LOCKED)
RETURNING n.id, n.account_id, n.profile_id, n.kind, n.key_at,
    (SELECT title FROM callback_profiles p WHERE p.id = n.profile_id) AS title,
    (SELECT p.document->>'url' FROM callback_profiles p WHERE p.id = n.profile_id) AS url,
    (SELECT recipients FROM report_settings s WHERE s.account_id = n.account_id) AS recipients
"""

_SUBJECTS = {
    "failing_warning": "Callback profile {title} is failing",
    "disabled_failing": "Callback profile {title} disabled: its callbacks keep failing",
    "disabled_gone": "Callback profile {title} disabled: endpoint returned 410 Gone",
}

_BODIES = {
    "failing_warning": (
        "Callbacks of profile {title} ({id}) to {url} have failed after every retry since "
        "{at}.\nIf none is delivered for {after}, the profile will be disabled "
        "automatically. The delivery log shows each attempt and its error."
    ),
    "disabled_failing": (
        "Profile {title} ({id}) was disabled: its callbacks to {url} have all failed since "
        "{at}, for longer than {after}.\nEvents for it are skipped until you re-enable it "
        "(PATCH enabled: true, or the switch on the web page)."
    ),
    "disabled_gone": (
        "Profile {title} ({id}) was disabled: endpoint returned 410 Gone ({url}, at {at}).\n"
        "Events for it are skipped until you re-enable it (PATCH enabled: true, or the "
        "switch on the web page)."
    ),
}


def build_notice(row: asyncpg.Record, sender: str, after: str) -> EmailMessage:
    values = {
        "title": row["title"] or str(row["profile_id"]),
        "id": str(row["profile_id"]),
        "url": row["url"] or "its endpoint",
        "at": row["key_at"].isoformat(),
        "after": after,
    }
    message = EmailMessage()
    message["Subject"] = _SUBJECTS[row["kind"]].format(**values)
    message["From"] = sender
    message["To"] = ", ".join(row["recipients"])
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(_BODIES[row["kind"]].format(**values))
    return message


class Notifier:
    """Sends pending notices; ``run`` until cancelled, woken by ``wake`` after ingest."""

    def __init__(
        self,
        settings: Settings,
        pool: asyncpg.Pool,
        metrics: ReporterMetrics,
        *,
        mailer: Mailer | None = None,
        replica: str | None = None,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._metrics = metrics
        self._mailer = mailer or Mailer(settings)
        self.replica = replica or replica_name()
        self._wake = asyncio.Event()

    def wake(self) -> None:
        self._wake.set()

    async def send_pending(self) -> int:
        """Claim and send what is pending; return how many emails went out."""
        sent = 0
        while True:
            rows = await self._pool.fetch(
                _CLAIM, self.replica, self._settings.reporter_claim_lease, BATCH
            )
            if not rows:
                return sent
            for row in rows:
                sent += await self._send(row)

    async def _send(self, row: asyncpg.Record) -> int:
        bound = {"profile_id": str(row["profile_id"]), "kind": row["kind"], "notice": row["id"]}
        recipients = list(row["recipients"] or [])
        if not recipients:
            log.info("profile_notice_no_recipients", **bound)
            await self._mark(row["id"], "no recipients")
            return 0
        try:
            message = build_notice(row, self._mailer.sender, str(self._settings.auto_disable_after))
        except BUILD_ERRORS as exc:
            self._metrics.report_failures.labels(stage="notice_build").inc()
            log.warning("profile_notice_set_aside", error=repr(exc), **bound)
            await self._pool.execute(
                "UPDATE profile_notices SET failed_at = now(), last_error = $2 WHERE id = $1",
                row["id"],
                repr(exc)[:500],
            )
            return 0
        try:
            await self._mailer.send(message, recipients)
        except SEND_ERRORS as exc:
            self._metrics.report_failures.labels(stage="notice_smtp").inc()
            log.warning("profile_notice_send_failed", error=repr(exc), **bound)
            await self._pool.execute(
                "UPDATE profile_notices SET lease_until = now(), last_error = $2 WHERE id = $1",
                row["id"],
                repr(exc)[:500],
            )
            return 0
        await self._mark(row["id"], None)
        self._metrics.notices_sent.labels(kind=row["kind"]).inc()
        log.info("profile_notice_sent", recipients=len(recipients), **bound)
        return 1

    async def _mark(self, notice_id: int, note: str | None) -> None:
        # The relay has the email: recording that must survive shutdown's cancellation.
        marking = asyncio.ensure_future(
            self._pool.execute(
                "UPDATE profile_notices SET sent_at = now(), last_error = $2 WHERE id = $1",
                notice_id,
                note,
            )
        )
        try:
            await asyncio.shield(marking)
        except asyncio.CancelledError:
            await marking
            raise

    async def run(self) -> None:
        interval = self._settings.reporter_schedule_interval
        while True:
            self._wake.clear()
            try:
                await self.send_pending()
            except DATABASE_ERRORS as exc:
                self._metrics.report_failures.labels(stage="notice").inc()
                log.warning("profile_notice_pass_failed", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), interval)
