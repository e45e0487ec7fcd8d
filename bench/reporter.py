"""Reporter ingest throughput: outcomes stored per second (contract §9).

The ingestor runs in this process against the given PostgreSQL and broker, on topics
and a consumer group of its own (a fresh prefix), so it never touches other data. The
group join is done before the clock starts (a warm-up record); then ``count`` outcomes
are produced and the clock stops when the last one is committed to the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from callbacks.db import create_pool, migrate
from callbacks.kafka import ensure_topics, make_producer
from callbacks.settings import Settings
from prometheus_client import CollectorRegistry
from reporter.ingest import Ingestor
from reporter.metrics import ReporterMetrics


def _outcomes(count: int, account: str, profiles: list[str]) -> list[tuple[bytes, bytes]]:
    """Realistic shape: most callbacks delivered at once, some retried, a few failed."""
    start = datetime.now(UTC) - timedelta(hours=1)
    records: list[tuple[bytes, bytes]] = []
    i = 0
    while len(records) < count:
        delivery = uuid.uuid4().hex
        attempts = 1 if i % 10 else 3
        for n in range(1, attempts + 1):
            last = n == attempts
            status = "retrying" if not last else ("failed" if i % 50 == 0 else "delivered")
            value = {
                "attempt_id": f"{delivery}:{n}",
                "delivery_id": delivery,
                "event_id": uuid.uuid4().hex,
                "account_id": account,
                "profile_id": profiles[i % len(profiles)],
                "channel": "sms",
                "event": "sms.send",
                "attempt": n,
                "status": status,
                "final": last,
                "http_status": 200 if status == "delivered" else 503,
                "error": None,
                "latency_ms": 12.5,
                "attempted_at": (start + timedelta(milliseconds=i * 7 + n)).isoformat(),
                "source_topic": "sms.send",
                "source_partition": i % 6,
                "source_offset": i,
            }
            records.append((delivery.encode(), orjson.dumps(value)))
        i += 1
    return records[:count]


async def bench_reporter(
    settings: Settings, *, count: int = 20_000, timeout_s: float = 120.0
) -> dict[str, float]:
    """Return ``reporter_outcomes_per_s`` (and the figures it is made of)."""
    settings = settings.model_copy(update={"topic_prefix": f"bench{uuid.uuid4().hex[:8]}."})
    dsn = settings.require_database_url()
    await migrate(dsn)
    await ensure_topics(settings)
    account = str(uuid.uuid4())
    records = _outcomes(count, account, [str(uuid.uuid4()) for _ in range(5)])
    pool = await create_pool(dsn, max_size=4)
    producer = make_producer(settings)
    await producer.start()
    ingestor = Ingestor(settings, pool, producer, ReporterMetrics(CollectorRegistry()))
    task = asyncio.create_task(ingestor.run(), name="bench-reporter-ingest")
    topic = settings.topics.outcomes
    try:
        warmup = _outcomes(1, account, [str(uuid.uuid4())])[0]
        await producer.send_and_wait(topic, key=warmup[0], value=warmup[1])
        async with asyncio.timeout(timeout_s):
            while ingestor.stored < 1:
                await asyncio.sleep(0.05)
            started = time.perf_counter()
            futures = [await producer.send(topic, key=k, value=v) for k, v in records]
            await asyncio.gather(*futures)
            produced = time.perf_counter() - started
            while ingestor.stored < count + 1:
                await asyncio.sleep(0.01)
            elapsed = time.perf_counter() - started
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await producer.stop()
        for table in ("delivery_attempts", "deliveries", "delivery_counters"):
            await pool.execute(f"DELETE FROM {table} WHERE account_id = $1", uuid.UUID(account))
        await pool.close()
    return {
        "reporter_outcomes_per_s": count / elapsed,
        "reporter_outcomes": float(count),
        "reporter_produce_s": produced,
        "reporter_ingest_s": elapsed,
    }
