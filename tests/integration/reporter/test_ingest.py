"""Ingest: outcomes become attempts, one row per callback and final-outcome counters;
a replayed batch changes nothing; a malformed record goes to callbacks.dead."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from callbacks.settings import Settings
from prometheus_client import CollectorRegistry
from reporter.ingest import Ingestor
from reporter.metrics import ReporterMetrics
from reporter.outcome_store import write_batch
from structlog.testing import capture_logs

from tests.helpers import KAFKA_FACING
from tests.integration.reporter.helpers import FAST_GROUP, create_profile, make_outcome, produce

pytestmark = KAFKA_FACING

T0 = datetime(2026, 11, 24, 10, 7, tzinfo=UTC)


async def _snapshot(pool: asyncpg.Pool, account: uuid.UUID) -> tuple[object, ...]:
    attempts = await pool.fetch(
        "SELECT * FROM delivery_attempts WHERE account_id = $1 ORDER BY attempt_id", account
    )
    deliveries = await pool.fetch(
        "SELECT * FROM deliveries WHERE account_id = $1 ORDER BY delivery_id", account
    )
    counters = await pool.fetch(
        "SELECT * FROM delivery_counters WHERE account_id = $1 ORDER BY bucket, profile_id",
        account,
    )
    return tuple(map(tuple, attempts)), tuple(map(tuple, deliveries)), tuple(map(tuple, counters))


async def test_batch_is_stored_with_latest_state_and_counters_and_replay_changes_nothing(
    topics: Settings,
    pool: asyncpg.Pool,
    account: uuid.UUID,
    producer: AIOKafkaProducer,
    metrics: ReporterMetrics,
) -> None:
    profile = await create_profile(pool, account, "Orders")
    # Delivery ids of this run alone (attempt ids are unique across the database, and
    # the test runs once per broker).
    run = account.hex[:8]
    retried = [
        make_outcome(
            account,
            profile,
            delivery_id=f"d-retried-{run}",
            attempt=1,
            status="retrying",
            http_status=503,
            attempted_at=T0,
        ),
        make_outcome(
            account,
            profile,
            delivery_id=f"d-retried-{run}",
            attempt=2,
            status="delivered",
            attempted_at=T0 + timedelta(minutes=10),
        ),
    ]
    failed = make_outcome(
        account,
        profile,
        delivery_id=f"d-failed-{run}",
        status="failed",
        http_status=None,
        error="connection refused",
        attempted_at=T0,
    )
    ok = make_outcome(
        account, profile, delivery_id=f"d-ok-{run}", attempted_at=T0 + timedelta(hours=1)
    )
    # Out of order on purpose: attempt 2 before attempt 1 of the same callback.
    await produce(producer, topics.topics.outcomes, [retried[1], failed, ok, retried[0]])
    await producer.send_and_wait(topics.topics.outcomes, key=b"x", value=b"{not json")

    ingestor = Ingestor(
        topics,
        pool,
        producer,
        metrics,
        group_id=f"g-{uuid.uuid4().hex}",
        consumer_options=FAST_GROUP,
    )
    assert await ingestor.drain() == 5
    assert ingestor.stored == 4

    rows = {
        r["delivery_id"].removesuffix(f"-{run}"): r
        for r in await pool.fetch("SELECT * FROM deliveries WHERE account_id = $1", account)
    }
    assert set(rows) == {"d-retried", "d-failed", "d-ok"}
    latest = rows["d-retried"]
    assert (latest["attempt"], latest["status"], latest["final"]) == (2, "delivered", True)
    assert latest["first_attempted_at"] == T0
    assert latest["last_attempted_at"] == T0 + timedelta(minutes=10)
    assert (latest["source_topic"], latest["source_partition"], latest["source_offset"]) == (
        "sms.send",
        0,
        7,
    )
    assert rows["d-failed"]["error"] == "connection refused"

    counters = await pool.fetch(
        "SELECT bucket, delivered, failed FROM delivery_counters WHERE account_id = $1"
        " ORDER BY bucket",
        account,
    )
    assert [(c["bucket"], c["delivered"], c["failed"]) for c in counters] == [
        (datetime(2026, 11, 24, 10, 0, tzinfo=UTC), 0, 1),
        (datetime(2026, 11, 24, 10, 15, tzinfo=UTC), 1, 0),
        (datetime(2026, 11, 24, 11, 0, tzinfo=UTC), 1, 0),
    ]

    # The malformed record went to callbacks.dead with its reason.
    dead = AIOKafkaConsumer(
        topics.topics.dead,
        bootstrap_servers=topics.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await dead.start()
    try:
        record = await dead.getone()
    finally:
        await dead.stop()
    assert record.value == b"{not json"
    headers = dict(record.headers)
    assert headers["cb-reason"] == b"invalid_outcome"
    assert headers["cb-error"].startswith(b"record: Invalid JSON")
    assert headers["cb-source-topic"] == topics.topics.outcomes.encode()
    assert (
        metrics.registry.get_sample_value(
            "callbacks_dead_letters_total", {"reason": "invalid_outcome"}
        )
        == 1
    )

    # Replay everything through a new consumer group: nothing changes.
    before = await _snapshot(pool, account)
    replay_metrics = ReporterMetrics(CollectorRegistry())
    replay = Ingestor(
        topics,
        pool,
        producer,
        replay_metrics,
        group_id=f"g-{uuid.uuid4().hex}",
        consumer_options=FAST_GROUP,
    )
    assert await replay.drain() == 5
    assert replay.stored == 0
    assert await _snapshot(pool, account) == before
    assert replay_metrics.registry.get_sample_value("callbacks_outcomes_duplicate_total") == 4


async def test_committed_offsets_are_not_read_again(
    topics: Settings,
    pool: asyncpg.Pool,
    account: uuid.UUID,
    producer: AIOKafkaProducer,
    metrics: ReporterMetrics,
) -> None:
    profile = await create_profile(pool, account, "P")
    await produce(producer, topics.topics.outcomes, [make_outcome(account, profile)])
    group = f"g-{uuid.uuid4().hex}"
    assert (
        await Ingestor(
            topics, pool, producer, metrics, group_id=group, consumer_options=FAST_GROUP
        ).drain()
        == 1
    )
    await produce(producer, topics.topics.outcomes, [make_outcome(account, profile)])
    assert (
        await Ingestor(
            topics, pool, producer, metrics, group_id=group, consumer_options=FAST_GROUP
        ).drain()
        == 1
    )


async def test_duplicates_inside_one_batch_count_once(
    pool: asyncpg.Pool, account: uuid.UUID
) -> None:
    profile = await create_profile(pool, account, "P")
    outcome = make_outcome(account, profile, attempted_at=T0)
    result = await write_batch(pool, [outcome, outcome, outcome])
    assert (result.received, result.inserted) == (3, 1)
    row = await pool.fetchrow(
        "SELECT sum(delivered) AS d FROM delivery_counters WHERE account_id = $1", account
    )
    assert row is not None
    assert row["d"] == 1


async def test_a_redelivered_callback_moves_its_count_instead_of_adding_one(
    pool: asyncpg.Pool, account: uuid.UUID
) -> None:
    """Failed finally, then redelivered from the delivery log: one callback, delivered."""
    profile = await create_profile(pool, account, "P")
    again = f"d-again-{account.hex[:8]}"  # attempt ids are unique across the database
    failed = make_outcome(
        account, profile, delivery_id=again, attempt=3, status="failed", attempted_at=T0
    )
    await write_batch(pool, [failed])
    redelivered = make_outcome(
        account,
        profile,
        delivery_id=again,
        attempt=4,
        status="delivered",
        attempted_at=T0 + timedelta(days=1),
    )
    await write_batch(pool, [redelivered])
    await write_batch(pool, [failed, redelivered])  # a replay changes nothing
    row = await pool.fetchrow(
        "SELECT sum(delivered) AS d, sum(failed) AS f FROM delivery_counters WHERE account_id = $1",
        account,
    )
    assert row is not None
    assert (row["d"], row["f"]) == (1, 0)


async def test_an_outcome_the_database_refuses_is_set_aside_and_ingest_goes_on(
    topics: Settings,
    pool: asyncpg.Pool,
    account: uuid.UUID,
    producer: AIOKafkaProducer,
    metrics: ReporterMetrics,
) -> None:
    """A NUL in ``event_id`` passes parsing, but PostgreSQL text cannot hold it."""
    profile = await create_profile(pool, account, "P")
    poison = make_outcome(account, profile, delivery_id="d-poison").model_copy(
        update={"event_id": "ev-\u0000-poison"}
    )
    good = [make_outcome(account, profile, attempted_at=T0) for _ in range(1000)]
    await produce(producer, topics.topics.outcomes, [poison, *good])

    ingestor = Ingestor(
        topics,
        pool,
        producer,
        metrics,
        group_id=f"g-{uuid.uuid4().hex}",
        consumer_options=FAST_GROUP,
    )
    with capture_logs() as logs:
        assert await ingestor.drain(timeout_s=60) == 1001
    stored = await pool.fetchval(
        "SELECT count(*) FROM deliveries WHERE account_id = $1 AND delivery_id <> 'd-poison'",
        account,
    )
    assert stored == 1000
    assert ingestor.stored == 1000
    assert (
        metrics.registry.get_sample_value(
            "callbacks_dead_letters_total", {"reason": "outcome_refused"}
        )
        == 1
    )
    [line] = [e for e in logs if e["event"] == "outcome_rejected"]
    assert line["kind"] == "outcome_refused"
    assert "CharacterNotInRepertoireError" in line["reason"]

    dead = AIOKafkaConsumer(
        topics.topics.dead,
        bootstrap_servers=topics.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await dead.start()
    try:
        record = await dead.getone()
    finally:
        await dead.stop()
    assert record.value == poison.model_dump_json().encode()
    headers = dict(record.headers)
    assert headers["cb-reason"] == b"outcome_refused"
    assert headers["cb-error"].startswith(b"refused by the database:")
    assert headers["cb-source-topic"] == topics.topics.outcomes.encode()
