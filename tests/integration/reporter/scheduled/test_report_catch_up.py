"""The report schedule after trouble: an outage's missed periods are all sent, a period
waits for ingest to pass its end, a slow relay cannot outlast the claim lease, and a
report that cannot be built is set aside. Real PostgreSQL, broker and aiosmtpd."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from callbacks.models.outcomes import Outcome
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from reporter.ingest import Ingestor
from reporter.metrics import ReporterMetrics
from reporter.outcome_store import write_batch
from reporter.schedule import Scheduler

from tests.integration.reporter.helpers import (
    FAST_GROUP,
    Mailbox,
    create_account,
    create_profile,
    make_outcome,
    mark_ingested,
)

ZONE = "Asia/Kolkata"
# Local midnights in Kolkata (UTC+05:30): Mon 23, Tue 24, Wed 25 and Thu 26 Nov 2026.
MON = datetime(2026, 11, 22, 18, 30, tzinfo=UTC)
TUE = MON + timedelta(days=1)
WED = TUE + timedelta(days=1)
THU = WED + timedelta(days=1)
LONG_AGO = datetime(2026, 1, 1, tzinfo=UTC)
RECENT = WED + timedelta(hours=1)  # a schedule this new owes only Wednesday at THU


def mail_settings(settings: Settings, port: int, **update: Any) -> Settings:
    return settings.model_copy(
        update={"smtp_port": port, "smtp_from": "reports@test.local", **update}
    )


async def daily_account(
    pool: asyncpg.Pool, name: str, *, since: datetime = RECENT
) -> tuple[uuid.UUID, str]:
    """An account with daily reports in Kolkata, on that schedule since ``since``."""
    account = await create_account(pool, name)
    recipient = f"{uuid.uuid4().hex[:8]}@example.com"
    await pool.execute(
        "INSERT INTO report_settings (account_id, enabled, frequency, recipients, timezone,"
        " schedule_since) VALUES ($1, true, 'daily', $2, $3, $4)",
        account,
        [recipient],
        ZONE,
        since,
    )
    return account, recipient


@contextlib.contextmanager
def info_logs() -> Iterator[list[MutableMapping[str, Any]]]:
    """Captured log events, info and up (the suite logs at warning)."""
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with structlog.testing.capture_logs() as logs:
            yield logs
    finally:
        structlog.configure(**saved)


def to(mailbox: Mailbox, recipient: str) -> list[str]:
    return [m["Subject"] for m in mailbox.messages if m["To"] == recipient]


async def test_every_period_an_outage_missed_is_sent_oldest_first(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    account, recipient = await daily_account(pool, "Outage Ltd", since=LONG_AGO)
    profile = await create_profile(pool, account, "Orders")
    # Mon: 1 delivered, Tue: 2, Wed: 3.
    await write_batch(
        pool,
        [
            make_outcome(account, profile, attempted_at=day + timedelta(hours=h))
            for n, day in enumerate((MON, TUE, WED), start=1)
            for h in range(n)
        ],
    )
    # Every day was reported up to Sunday; then the reporter was down from Monday morning
    # until Thursday 09:00 IST: Mon, Tue and Wed were never reported.
    for back in range(1, 8):
        await pool.execute(
            "INSERT INTO report_runs (account_id, kind, period_start, period_end, sent_at)"
            " VALUES ($1, 'daily', $2, $3, $3)",
            account,
            MON - timedelta(days=back),
            MON - timedelta(days=back - 1),
        )
    now = THU + timedelta(hours=9)
    await mark_ingested(pool, topics, now)
    scheduler = Scheduler(mail_settings(topics, port), pool, metrics, close_grace_s=0)

    assert await scheduler.tick(now) == 3
    assert to(mailbox, recipient) == [
        "Daily callback report for Outage Ltd - Mon 23 Nov 2026, Asia/Kolkata:"
        " 1 delivered, 0 failed",
        "Daily callback report for Outage Ltd - Tue 24 Nov 2026, Asia/Kolkata:"
        " 2 delivered, 0 failed",
        "Daily callback report for Outage Ltd - Wed 25 Nov 2026, Asia/Kolkata:"
        " 3 delivered, 0 failed",
    ]
    assert await scheduler.tick(now + timedelta(minutes=1)) == 0


async def test_catch_up_is_capped_and_never_reaches_before_the_schedule_began(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    now = THU + timedelta(hours=9)
    await mark_ingested(pool, topics, now)
    settings = mail_settings(topics, port)

    def days(recipient: str) -> list[str]:
        return [s.split(" - ")[1].split(",")[0] for s in to(mailbox, recipient)]

    # Reports turned on (again) on Tuesday afternoon: Monday is not owed, Tue and Wed are.
    fresh, fresh_to = await daily_account(pool, "Fresh", since=TUE + timedelta(hours=10))
    assert await Scheduler(settings, pool, metrics, close_grace_s=0).tick(now) == 2
    assert days(fresh_to) == ["Tue 24 Nov 2026", "Wed 25 Nov 2026"]

    # On the schedule for months, never reported: only the last two periods (the cap).
    capped_account, capped_to = await daily_account(pool, "Capped", since=LONG_AGO)
    capped = settings.model_copy(update={"reporter_catch_up_periods": 2})
    assert await Scheduler(capped, pool, metrics, close_grace_s=0).tick(now) == 2
    assert days(capped_to) == ["Tue 24 Nov 2026", "Wed 25 Nov 2026"]

    # Changing the frequency restarts the schedule: only the last closed week is owed.
    await pool.execute(
        "UPDATE report_settings SET enabled = false WHERE account_id = $1", capped_account
    )
    await pool.execute(
        "UPDATE report_settings SET frequency = 'weekly' WHERE account_id = $1", fresh
    )
    assert await Scheduler(settings, pool, metrics, close_grace_s=0).tick(now) == 1
    assert days(fresh_to)[-1] == "Mon 16 Nov 2026 to Sun 22 Nov 2026"


def _at_ms(outcome: Outcome) -> int:
    return int(outcome.attempted_at.timestamp() * 1000)


async def produce_at_attempt_time(
    producer: AIOKafkaProducer, topic: str, outcomes: list[Outcome]
) -> None:
    """Produce with each record's timestamp at its attempt, as a dispatcher does live."""
    futures = [
        await producer.send(
            topic,
            key=o.delivery_id.encode(),
            value=o.model_dump_json().encode(),
            timestamp_ms=_at_ms(o),
        )
        for o in outcomes
    ]
    for future in futures:
        await future


def spread(
    account: uuid.UUID, profile: uuid.UUID, start: datetime, end: datetime, count: int
) -> list[Outcome]:
    """``count`` final outcomes attempted evenly over [start, end); every third failed."""
    step = (end - start) / count
    return [
        make_outcome(
            account,
            profile,
            status="failed" if i % 3 == 0 else "delivered",
            attempted_at=start + step * i,
        )
        for i in range(count)
    ]


async def test_a_period_waits_until_ingest_has_passed_its_end(
    topics: Settings,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    """The reporter is stopped across Tuesday's end (midnight IST) under load, then
    restarted: Tuesday's report equals its counters once everything is ingested."""
    mailbox, port = smtp_server
    # On this schedule since Tuesday morning: Tuesday is the one period owed.
    account, recipient = await daily_account(pool, "Midnight Inc", since=TUE + timedelta(hours=1))
    profile = await create_profile(pool, account, "Orders")
    sim = {"now": WED - timedelta(minutes=2)}
    group = f"g-{uuid.uuid4().hex}"

    def ingestor() -> Ingestor:
        return Ingestor(
            topics,
            pool,
            producer,
            metrics,
            group_id=group,
            consumer_options=FAST_GROUP,
            clock=lambda: sim["now"],
        )

    before_stop = spread(account, profile, WED - timedelta(minutes=30), sim["now"], 300)
    await produce_at_attempt_time(producer, topics.topics.outcomes, before_stop)
    assert await ingestor().drain() == 300

    # Stopped at 23:58 IST: Tuesday's last two minutes and Wednesday's first minutes of
    # traffic reach the broker, and nothing ingests them.
    last_minutes = spread(account, profile, sim["now"], WED, 300)
    after_end = spread(account, profile, WED, WED + timedelta(minutes=4), 200)
    await produce_at_attempt_time(producer, topics.topics.outcomes, last_minutes + after_end)

    scheduler = Scheduler(mail_settings(topics, port), pool, metrics)  # the default grace
    with info_logs() as logs:
        assert await scheduler.tick(WED + timedelta(minutes=5)) == 0
    assert to(mailbox, recipient) == []
    [waiting] = [e for e in logs if e["event"] == "reports_waiting_for_ingest"]
    assert waiting["held"] == 1
    assert waiting["watermark"] == (WED - timedelta(minutes=2)).isoformat()

    # Restarted at 00:05 IST: it reads what it missed, and then Tuesday is reported.
    sim["now"] = WED + timedelta(minutes=5)
    assert await ingestor().drain() == 500
    assert await scheduler.tick(WED + timedelta(minutes=6)) == 1

    # An hour later the counters of Tuesday say what the report said.
    row = await pool.fetchrow(
        "SELECT sum(delivered) AS d, sum(failed) AS f FROM delivery_counters"
        " WHERE account_id = $1 AND bucket >= $2 AND bucket < $3",
        account,
        TUE,
        WED,
    )
    assert row is not None
    in_period = before_stop + last_minutes
    failed = sum(o.status == "failed" for o in in_period)
    assert (row["d"], row["f"]) == (len(in_period) - failed, failed)
    assert to(mailbox, recipient) == [
        f"Daily callback report for Midnight Inc - Tue 24 Nov 2026, Asia/Kolkata:"
        f" {row['d']} delivered, {row['f']} failed"
    ]


async def test_nothing_is_reported_while_a_partition_has_no_progress(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    from reporter.progress import PartitionProgress, record_progress, register_partitions

    mailbox, port = smtp_server
    _, recipient = await daily_account(pool, "Waiting")
    now = THU + timedelta(hours=9)
    scheduler = Scheduler(mail_settings(topics, port), pool, metrics, close_grace_s=0)
    assert await scheduler.tick(now) == 0  # no ingest ever ran
    topic = topics.topics.outcomes
    await register_partitions(pool, topic, 3)
    # Partitions 0 and 1 are idle and caught up; 2 has not been reported by its owner.
    await record_progress(pool, topic, [PartitionProgress(p, caught_up_at=now) for p in (0, 1)])
    assert await scheduler.tick(now) == 0
    await record_progress(pool, topic, [PartitionProgress(2, record_time=now)])
    assert await scheduler.tick(now) == 1
    assert len(to(mailbox, recipient)) == 1


class SlowRelay(Mailbox):
    """Takes DATA and then answers only when released (a relay stuck after DATA)."""

    def __init__(self) -> None:
        super().__init__()
        self.slow = True
        self.release = threading.Event()
        self.stuck = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.slow:
            self.stuck += 1
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
            return "451 too late"
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def slow_relay() -> Iterator[tuple[SlowRelay, int]]:
    from aiosmtpd.controller import Controller

    relay = SlowRelay()
    port = free_port()
    controller = Controller(relay, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield relay, port
    finally:
        relay.release.set()
        controller.stop()


async def test_a_slow_relay_is_abandoned_within_the_lease_and_sent_once_later(
    topics: Settings,
    pool: asyncpg.Pool,
    slow_relay: tuple[SlowRelay, int],
    metrics: ReporterMetrics,
) -> None:
    relay, port = slow_relay
    _, recipient = await daily_account(pool, "Slow Relay Co")
    now = THU + timedelta(hours=9)
    await mark_ingested(pool, topics, now)
    # A 3 s lease: a whole send may take 1 s, though each command may take 30 s.
    settings = mail_settings(topics, port, reporter_claim_lease="3s", smtp_timeout="30s")
    replicas = [
        Scheduler(settings, pool, metrics, replica=f"r{i}", close_grace_s=0) for i in range(2)
    ]

    started = time.monotonic()
    async with asyncio.timeout(3.0):  # the lease: a second replica could take over after it
        sent = await asyncio.gather(*(r.tick(now) for r in replicas))
    assert sent == [0, 0]
    assert time.monotonic() - started < 2.5
    assert relay.stuck == 1  # one replica tried; the other saw the live claim
    run = await pool.fetchrow(
        "SELECT claims, sent_at, last_error, lease_until <= now() AS free"
        " FROM report_runs WHERE kind = 'daily'"
    )
    assert run is not None
    assert (run["claims"], run["sent_at"], run["free"]) == (1, None, True)
    assert "TimeoutError" in run["last_error"]
    assert (
        metrics.registry.get_sample_value("callbacks_report_failures_total", {"stage": "smtp"}) == 1
    )

    # The relay recovers: the period goes out once, whichever replica ticks.
    relay.slow = False
    relay.release.set()
    for _ in range(3):
        await asyncio.gather(*(r.tick(now) for r in replicas))
    assert len(to(relay, recipient)) == 1


async def test_a_report_that_cannot_be_built_is_set_aside_and_others_go_out(
    topics: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    now = THU + timedelta(hours=9)
    await mark_ingested(pool, topics, now)
    bad, _ = await daily_account(pool, "Evil\r\nBcc: victim@example.com")
    _, good_to = await daily_account(pool, "Good")
    scheduler = Scheduler(
        mail_settings(topics, port, reporter_catch_up_periods=1), pool, metrics, close_grace_s=0
    )
    with structlog.testing.capture_logs() as logs:
        assert await scheduler.tick(now) == 1
    assert len(to(mailbox, good_to)) == 1
    assert [e["event"] for e in logs if e["event"] == "report_set_aside"] == ["report_set_aside"]
    assert await scheduler.tick(now) == 0  # set aside, not retried
    run = await pool.fetchrow(
        "SELECT claims, failed_at, last_error FROM report_runs WHERE account_id = $1", bad
    )
    assert run is not None
    assert run["claims"] == 1
    assert run["failed_at"] is not None
    assert "linefeed" in run["last_error"]
    assert (
        metrics.registry.get_sample_value("callbacks_report_failures_total", {"stage": "build"})
        == 1
    )
