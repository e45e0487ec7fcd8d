"""``python -m reporter`` as in production: ops endpoints, ingest, SIGTERM."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from pathlib import Path

import aiohttp
import asyncpg
from aiokafka import AIOKafkaProducer
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import ChildProcess, free_port

from tests.helpers import eventually
from tests.integration.reporter.helpers import create_profile, make_outcome, produce


async def test_reporter_process_serves_ops_and_ingests_until_sigterm(
    topics: Settings,
    pool: asyncpg.Pool,
    account: uuid.UUID,
    producer: AIOKafkaProducer,
    tmp_path: Path,
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "CALLBACKS_DATABASE_URL": topics.require_database_url(),
        **topics.kafka_environment(),
        "CALLBACKS_TOPIC_PREFIX": topics.topic_prefix,
        "CALLBACKS_API_HOST": "127.0.0.1",
        "CALLBACKS_REPORTER_METRICS_PORT": str(port),
        "CALLBACKS_SMTP_PORT": str(free_port()),
    }
    process = ChildProcess(
        "reporter", [sys.executable, "-m", "reporter"], env=env, log_path=tmp_path / "reporter.log"
    )
    process.start()
    try:
        profile = await create_profile(pool, account, "P")
        await produce(
            producer, topics.topics.outcomes, [make_outcome(account, profile) for _ in range(20)]
        )
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as session:

            async def get(path: str) -> tuple[int, str]:
                try:
                    async with session.get(base + path) as response:
                        return response.status, await response.text()
                except aiohttp.ClientConnectionError:
                    return 0, ""

            async def ready() -> bool:
                return (await get("/readyz"))[0] == 200

            await eventually(ready, timeout_s=20, what="reporter ready")
            assert (await get("/healthz"))[0] == 200

            async def stored() -> bool:
                count = await pool.fetchval(
                    "SELECT count(*) FROM delivery_attempts WHERE account_id = $1", account
                )
                return bool(count == 20)

            await eventually(stored, timeout_s=20, what="outcomes stored")

            async def counted() -> str:
                status, text = await get("/metrics")
                # Counted once the batch's offsets are committed, just after the rows.
                ok = status == 200 and "callbacks_outcomes_ingested_total 20.0" in text
                return text if ok else ""

            metrics = await eventually(counted, what="ingest counted in /metrics")
            for name in (
                "callbacks_reporter_ingest_lag",
                "callbacks_reports_sent_total",
                "callbacks_reporter_ingest_batch_duration_seconds_bucket",
            ):
                assert name in metrics, name
        process.stop(signal.SIGTERM, timeout_s=15)
        assert process.process is not None
        assert process.process.returncode == 0, (tmp_path / "reporter.log").read_text()
    finally:
        process.kill()
