"""Report emails through a real aiosmtpd server: counts, parts, races, stale claims,
SMTP failures and send-now."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import asyncpg
import pytest
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from pydantic import SecretStr
from reporter.metrics import ReporterMetrics
from reporter.outcome_store import write_batch
from reporter.schedule import Scheduler

from tests.helpers import eventually, self_signed_certificate
from tests.integration.reporter.helpers import (
    Client,
    Mailbox,
    create_account,
    create_profile,
    make_outcome,
    mark_ingested,
)

# Wednesday 2026-11-25 11:30 in Kolkata: the last closed ISO week is Mon 16 - Sun 22 Nov,
# i.e. 2026-11-15T18:30Z up to 2026-11-22T18:30Z.
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
WEEK_START = datetime(2026, 11, 15, 18, 30, tzinfo=UTC)
WEEK_END = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
async def caught_up(pool: asyncpg.Pool, topics: Settings) -> None:
    """Ingest has passed every period these tests report (written straight to the store)."""
    await mark_ingested(pool, topics, max(NOW, datetime.now(UTC)))


def mail_settings(settings: Settings, port: int) -> Settings:
    return settings.model_copy(update={"smtp_port": port, "smtp_from": "reports@test.local"})


async def enable(
    pool: asyncpg.Pool,
    account: uuid.UUID,
    recipient: str,
    *,
    frequency: str = "weekly",
    enabled: bool = True,
) -> None:
    await pool.execute(
        "INSERT INTO report_settings (account_id, enabled, frequency, recipients, timezone)"
        " VALUES ($1, $2, $3, $4, 'Asia/Kolkata')",
        account,
        enabled,
        frequency,
        [recipient],
    )


def to(mailbox: Mailbox, recipient: str) -> list[EmailMessage]:
    return [m for m in mailbox.messages if m["To"] == recipient]


def parts(message: EmailMessage) -> tuple[str, str]:
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(plain, EmailMessage)
    assert isinstance(html, EmailMessage)
    return plain.get_content().replace("\r\n", "\n"), html.get_content()


async def _seed_week(pool: asyncpg.Pool, account: uuid.UUID) -> None:
    orders = await create_profile(pool, account, "Orders")
    alerts = await create_profile(pool, account, "Alerts <ops>")
    mon = WEEK_START + timedelta(hours=10)
    outcomes = [
        *(make_outcome(account, orders, attempted_at=mon + timedelta(minutes=i)) for i in range(3)),
        make_outcome(account, orders, attempted_at=WEEK_START),  # Mon 00:00 IST: inside
        make_outcome(account, orders, status="failed", attempted_at=mon + timedelta(days=1)),
        make_outcome(account, orders, status="retrying", attempted_at=mon),  # not final
        *(
            make_outcome(
                account, alerts, status="failed", attempted_at=WEEK_END - timedelta(minutes=10)
            )
            for _ in range(2)
        ),
        # Just outside, on both sides.
        make_outcome(account, orders, attempted_at=WEEK_START - timedelta(minutes=1)),
        make_outcome(account, orders, attempted_at=WEEK_END),
    ]
    await write_batch(pool, outcomes)


async def test_weekly_email_has_counts_per_profile_and_a_daily_chart(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    account = await create_account(pool, "Acme & Co")
    await _seed_week(pool, account)
    recipient = f"{uuid.uuid4().hex[:8]}@example.com"
    await enable(pool, account, recipient)
    # Another account's outcomes never show up in this report.
    other = await create_account(pool)
    await write_batch(
        pool,
        [
            make_outcome(
                other,
                await create_profile(pool, other, "X"),
                attempted_at=WEEK_START + timedelta(hours=1),
            )
        ],
    )

    scheduler = Scheduler(mail_settings(topics, port), pool, metrics, close_grace_s=0)
    await scheduler.tick(NOW)
    [message] = to(mailbox, recipient)
    assert message["Subject"] == (
        "Weekly callback report for Acme & Co - Mon 16 Nov 2026 to Sun 22 Nov 2026,"
        " Asia/Kolkata: 4 delivered, 3 failed"
    )
    assert message["From"] == "reports@test.local"
    text, html = parts(message)
    assert "Delivered: 4\n" in text
    assert "Failed:    3\n" in text
    assert "Total:     7\n" in text
    lines = text.splitlines()
    assert "  Alerts <ops>  delivered       0  failed       2" in lines
    assert "  Orders        delivered       4  failed       1" in lines
    chart = lines[lines.index("Per day (# delivered, ! failed)") + 1 :][:7]
    assert chart[0].startswith("  Mon 16 Nov  " + "#" * 40)
    assert chart[0].endswith(" 4 / 0")
    assert chart[1].endswith(" 0 / 1")
    assert chart[6].endswith(" 0 / 2")
    assert all(line.endswith(" 0 / 0") for line in chart[2:6])
    assert "Alerts &lt;ops&gt;" in html
    assert "Acme &amp; Co" in html
    assert "width:240px" in html  # the longest bar
    assert html.count("Mon 16 Nov") == 2  # the header line and the chart row
    assert (
        metrics.registry.get_sample_value("callbacks_reports_sent_total", {"kind": "weekly"})
        is not None
    )

    # Ticking again sends nothing more for this period.
    await scheduler.tick(NOW + timedelta(minutes=5))
    assert len(to(mailbox, recipient)) == 1


async def test_daily_report_has_no_chart(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    account = await create_account(pool)
    await _seed_week(pool, account)
    recipient = f"{uuid.uuid4().hex[:8]}@example.com"
    await enable(pool, account, recipient, frequency="daily")
    # Tue 17 Nov 09:00 IST: the last closed day is Mon 16 Nov.
    await Scheduler(mail_settings(topics, port), pool, metrics, close_grace_s=0).tick(
        datetime(2026, 11, 17, 3, 30, tzinfo=UTC)
    )
    [message] = to(mailbox, recipient)
    assert "- Mon 16 Nov 2026, Asia/Kolkata: 4 delivered, 0 failed" in message["Subject"]
    text, html = parts(message)
    assert "Per day" not in text
    assert "Per day" not in html


async def test_two_replicas_racing_send_one_email(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    account = await create_account(pool)
    await _seed_week(pool, account)
    recipient = f"{uuid.uuid4().hex[:8]}@example.com"
    await enable(pool, account, recipient)
    settings = mail_settings(topics, port)
    replicas = [
        Scheduler(settings, pool, metrics, replica=f"r{i}", close_grace_s=0) for i in range(2)
    ]
    for _ in range(3):
        await asyncio.gather(*(r.tick(NOW) for r in replicas for _ in range(2)))
    assert len(to(mailbox, recipient)) == 1
    row = await pool.fetchrow(
        "SELECT claims, sent_at FROM report_runs WHERE account_id = $1", account
    )
    assert row is not None
    assert row["claims"] == 1
    assert row["sent_at"] is not None


async def test_a_claim_whose_sender_died_is_sent_once_after_its_lease(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    account = await create_account(pool)
    await _seed_week(pool, account)
    recipient = f"{uuid.uuid4().hex[:8]}@example.com"
    await enable(pool, account, recipient)
    # A replica claimed the period and died before sending: its lease still runs.
    await pool.execute(
        "INSERT INTO report_runs (account_id, kind, period_start, period_end, claimed_by,"
        " lease_until, claims) VALUES ($1, 'weekly', $2, $3, 'crashed', now() + interval"
        " '1 hour', 1)",
        account,
        WEEK_START,
        WEEK_END,
    )
    scheduler = Scheduler(
        mail_settings(topics, port), pool, metrics, replica="alive", close_grace_s=0
    )
    await scheduler.tick(NOW)
    assert to(mailbox, recipient) == []
    # The lease expires: the next tick takes the claim over and sends, once.
    await pool.execute(
        "UPDATE report_runs SET lease_until = now() - interval '1 second' WHERE account_id = $1",
        account,
    )
    await scheduler.tick(NOW)
    await scheduler.tick(NOW)
    assert len(to(mailbox, recipient)) == 1
    row = await pool.fetchrow(
        "SELECT claims, claimed_by, sent_at FROM report_runs WHERE account_id = $1", account
    )
    assert row is not None
    assert (row["claims"], row["claimed_by"]) == (2, "alive")
    assert row["sent_at"] is not None


async def test_an_unreachable_relay_releases_the_claim_for_a_retry(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    account = await create_account(pool)
    await _seed_week(pool, account)
    recipient = f"{uuid.uuid4().hex[:8]}@example.com"
    await enable(pool, account, recipient)
    down = Scheduler(mail_settings(topics, free_port()), pool, metrics, close_grace_s=0)
    await down.tick(NOW)
    failures = metrics.registry.get_sample_value(
        "callbacks_report_failures_total", {"stage": "smtp"}
    )
    assert failures is not None
    assert failures >= 1
    error = await pool.fetchval(
        "SELECT last_error FROM report_runs WHERE account_id = $1 AND sent_at IS NULL", account
    )
    assert error
    await Scheduler(mail_settings(topics, port), pool, metrics, close_grace_s=0).tick(NOW)
    assert len(to(mailbox, recipient)) == 1


@pytest.mark.parametrize("enabled", [False, True])
async def test_send_now_reports_the_period_so_far_without_blocking_the_schedule(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
    api_server: Client,
    enabled: bool,
) -> None:
    mailbox, port = smtp_server
    api = await api_server.new_account()
    account = uuid.UUID(api.account)
    recipient = f"{uuid.uuid4().hex[:8]}@example.com"
    status, _ = await api.call(
        "PUT",
        "/v1/callback-reports/settings",
        json={
            "enabled": enabled,
            "frequency": "monthly",
            "recipients": [recipient],
            "timezone": "Asia/Kolkata",
        },
    )
    assert status == 200
    profile = await create_profile(pool, account, "Live")
    now = datetime.now(UTC)
    await write_batch(
        pool,
        [
            make_outcome(account, profile, attempted_at=now - timedelta(seconds=5)),
            make_outcome(
                account, profile, status="failed", attempted_at=now - timedelta(seconds=5)
            ),
        ],
    )
    # A long interval: only the NOTIFY of send-now can wake the loop in time.
    settings = mail_settings(topics, port).model_copy(update={"reporter_schedule_interval": "10m"})
    scheduler = Scheduler(settings, pool, metrics, close_grace_s=0)
    task = asyncio.create_task(scheduler.run())
    try:
        # The loop's first tick sends the scheduled (last closed month) report if enabled.
        scheduled = 1 if enabled else 0
        if enabled:
            await eventually(lambda: _count(mailbox, recipient, 1), what="scheduled report")
        status, body = await api.call("POST", "/v1/callback-reports/send-now")
        assert status == 202
        await eventually(lambda: _count(mailbox, recipient, scheduled + 1), what="send-now")

        async def recorded() -> bool:
            sent = await pool.fetchval(
                "SELECT sent_at FROM report_runs WHERE id = $1", body["request_id"]
            )
            return sent is not None

        await eventually(recorded, what="send-now marked sent")
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    now_mail = [m for m in to(mailbox, recipient) if m["Subject"].startswith("Current")]
    assert len(now_mail) == 1
    assert "(so far), Asia/Kolkata: 1 delivered, 1 failed" in now_mail[0]["Subject"]
    text, _ = parts(now_mail[0])
    assert "  Live  delivered       1  failed       1" in text.splitlines()


async def _count(mailbox: Mailbox, recipient: str, expected: int) -> bool:
    return len(to(mailbox, recipient)) >= expected


async def test_starttls_then_login_when_configured(
    topics: Settings,
    pool: asyncpg.Pool,
    metrics: ReporterMetrics,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    cert, key = self_signed_certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    # The client trusts the test certificate through OpenSSL's standard variable, so the
    # production code path (default context, verification on) is what runs.
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    mailbox = Mailbox()
    logins: list[bytes] = []

    def authenticator(
        server: object, session: object, envelope: object, mechanism: str, data: object
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append(data.login)
        return AuthResult(success=data.password == b"s3cret")

    port = free_port()
    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=server_tls,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    try:
        account = await create_account(pool)
        await _seed_week(pool, account)
        recipient = f"{uuid.uuid4().hex[:8]}@example.com"
        await enable(pool, account, recipient)
        settings = mail_settings(topics, port).model_copy(
            update={
                "smtp_username": "reporter",
                "smtp_password": SecretStr("s3cret"),
                "smtp_starttls": True,
            }
        )
        await Scheduler(settings, pool, metrics, close_grace_s=0).tick(NOW)
    finally:
        controller.stop()
    assert len(to(mailbox, recipient)) == 1
    assert logins == [b"reporter"]
