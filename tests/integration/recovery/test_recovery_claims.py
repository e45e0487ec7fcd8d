"""Who works a recovery: a claim is a lease; an expired one is taken over, a live one
never, and a replica that lost its lease stops (never two replicas on one recovery)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import pytest
import structlog
from aiokafka import AIOKafkaProducer
from callbacks.kafka import make_producer
from callbacks.settings import Settings
from profile_api.recovery import RecoveryRunner
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from tests.integration.recovery.helpers import Seeded, seed
from tests.integration.recovery.test_recovery_api import at


@pytest.fixture
async def producer(recovery_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(recovery_settings)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


def runner(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, settings: Settings, name: str
) -> RecoveryRunner:
    return RecoveryRunner(
        pool=pool, producer=producer, settings=settings, registry=CollectorRegistry(), name=name
    )


async def _recovery(
    pool: asyncpg.Pool, account: uuid.UUID, claimed_by: str | None, lease: timedelta | None
) -> uuid.UUID:
    recovery_id, profile = uuid.uuid4(), uuid.uuid4()
    await pool.execute(
        """INSERT INTO recoveries (id, account_id, profile_id, since, window_end, filter,
                                  status, total, claimed_by, lease_until)
           VALUES ($1, $2, $3, $4, $5, 'failed', 'running', 1, $6, now() + $7)""",
        recovery_id,
        account,
        profile,
        at(0),
        at(30),
        claimed_by,
        lease,
    )
    return recovery_id


@pytest.fixture
async def account(pool: asyncpg.Pool) -> uuid.UUID:
    account_id = uuid.uuid4()
    await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, 'claims')", account_id)
    return account_id


async def test_an_expired_lease_is_taken_over_and_a_live_one_never(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, recovery_settings: Settings, account: uuid.UUID
) -> None:
    await _recovery(pool, account, "alive", timedelta(hours=1))
    orphan = await _recovery(pool, account, "crashed", timedelta(seconds=-1))
    one = runner(pool, producer, recovery_settings, "one")
    two = runner(pool, producer, recovery_settings, "two")

    claims = await asyncio.gather(one.claim(), two.claim())
    taken = [c for c in claims if c is not None]
    assert [c.id for c in taken] == [orphan]  # exactly one replica got it
    assert await one.claim() is None
    assert await two.claim() is None
    holder = await pool.fetchval("SELECT claimed_by FROM recoveries WHERE id = $1", orphan)
    assert holder in ("one", "two")


async def test_a_replica_that_lost_its_lease_stops_without_finishing(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, recovery_settings: Settings, account: uuid.UUID
) -> None:
    recovery_id = await _recovery(pool, account, None, None)
    profile = await pool.fetchval("SELECT profile_id FROM recoveries WHERE id = $1", recovery_id)
    await seed(pool, str(account), str(profile), [Seeded("lost-1", "failed", at(1))])
    slow = runner(pool, producer, recovery_settings, "slow")
    job = await slow.claim()
    assert job is not None
    assert job.id == recovery_id
    # Its lease ran out while it stalled, and another replica took the recovery.
    await pool.execute("UPDATE recoveries SET claimed_by = 'fast' WHERE id = $1", recovery_id)

    with capture_logs() as logs:
        await slow.work(job)
    assert "recovery_lease_lost" in [e["event"] for e in logs]
    row = await pool.fetchrow(
        "SELECT status, done, claimed_by FROM recoveries WHERE id = $1", recovery_id
    )
    assert (row["status"], row["done"], row["claimed_by"]) == ("running", 0, "fast")


async def test_a_recovery_logs_its_start_progress_and_end(
    pool: asyncpg.Pool, producer: AIOKafkaProducer, recovery_settings: Settings, account: uuid.UUID
) -> None:
    recovery_id = await _recovery(pool, account, None, None)
    profile = await pool.fetchval("SELECT profile_id FROM recoveries WHERE id = $1", recovery_id)
    rows = [Seeded(f"{recovery_id}-{i}", "failed", at(1)) for i in range(3)]
    await seed(pool, str(account), str(profile), rows)
    await pool.execute("UPDATE recoveries SET total = 3 WHERE id = $1", recovery_id)
    chatty = RecoveryRunner(
        pool=pool,
        producer=producer,
        settings=recovery_settings,
        registry=CollectorRegistry(),
        name="chatty",
        progress_log_interval_s=0.0,
    )
    job = await chatty.claim()
    assert job is not None
    saved = structlog.get_config()
    # The suite logs at warning; a recovery's lines are info.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.INFO))
    try:
        with capture_logs() as logs:
            await chatty.work(job)
    finally:
        structlog.configure(**saved)
    seen = [(e["event"], e.get("done")) for e in logs if e["event"].startswith("recovery_")]
    assert seen == [
        ("recovery_started", 0),
        ("recovery_progress", 1),
        ("recovery_progress", 2),
        ("recovery_progress", 3),
        ("recovery_done", 3),
    ]
    row = await pool.fetchrow(
        "SELECT status, done, claimed_by FROM recoveries WHERE id = $1", recovery_id
    )
    assert (row["status"], row["done"], row["claimed_by"]) == ("done", 3, None)
