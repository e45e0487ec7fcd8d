"""``make demo`` against the local stack: the services run as processes, as in ``make
run``, on the session's PostgreSQL and broker under this test's topic prefix."""

from __future__ import annotations

import asyncio
import io
import re
import shutil
import signal
import sys
from collections.abc import AsyncIterator

import pytest
from callbacks.settings import Settings
from callbacks_dev.devstack.stack import LocalStack, StackConfig
from callbacks_dev.simulator.run import DemoOptions, run_demo


@pytest.fixture
async def stack(settings: Settings) -> AsyncIterator[LocalStack]:
    config = StackConfig.on_free_ports()
    config.database_url = settings.require_database_url()
    config.kafka_bootstrap = settings.kafka_bootstrap
    config.external_kafka = True
    config.master_key = settings.master_key.get_secret_value() if settings.master_key else ""
    config.extra_env = {
        **settings.kafka_environment(),
        "CALLBACKS_TOPIC_PREFIX": settings.topic_prefix,
        "CALLBACKS_KAFKA_PARTITIONS": "3",
        # Short enough that callbacks refused on every attempt end as dead letters
        # within the run.
        "CALLBACKS_RETRY_SCHEDULE": "300ms,600ms",
        # Every demo profile points at one host: with 30% refused, five failures in a
        # row would open its circuit breaker and fail the rest fast. This test is about
        # the receiver's answers, so the breaker stays out of the way.
        "CALLBACKS_BREAKER_FAILURE_THRESHOLD": "1000",
        "CALLBACKS_LOG_LEVEL": "warning",
    }
    local = LocalStack(config)
    try:
        await local.start_infrastructure()
        await local.start_services(("profile_api", "dispatcher"))
        yield local
    finally:
        await asyncio.to_thread(local.stop)
        shutil.rmtree(local.workdir, ignore_errors=True)


async def test_demo_shows_callbacks_arriving_and_reuses_its_profiles(
    stack: LocalStack,
) -> None:
    account = await stack.create_account("demo-test")
    argv = [
        *("--api-url", stack.api_url, "--bootstrap", stack.config.kafka_bootstrap),
        *("--api-key", account["api_key"], "--account-id", account["id"]),
        *("--topic-prefix", stack.settings().topic_prefix),
        *("--rate", "150", "--duration", "60", "--failure-share", "0.3", "--seed", "11"),
        *("--mix", "sms=3,email=2,whatsapp=3,chatbot=2", "--settle", "10"),
    ]
    # The command line, as `make demo` runs it; Ctrl-C once the live line shows 300
    # events ends the traffic early, and the summary still comes.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "callbacks_dev.simulator",
        *argv,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=stack.env(),
    )
    assert process.stdout is not None
    head: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while not re.search(rb"produced ([3-9]\d\d|\d{4,})", head[-1] if head else b""):
                head.append(await process.stdout.readline())
                assert head[-1], b"".join(head).decode()
            process.send_signal(signal.SIGINT)
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    printed = b"".join([*head, output]).decode()
    assert process.returncode == 0, printed
    assert "profiles created 5, reused 0" in printed
    assert "bad signatures: 0" in printed
    total = next(line for line in printed.splitlines() if line.startswith("total")).split()
    produced, skipped, delivered, missing = map(int, total[1:5])
    assert 300 <= produced < 150 * 30  # stopped early, by the signal
    assert delivered >= (produced - skipped) * 0.6, printed
    # Every callback not delivered was refused on every attempt and ended failed.
    outcomes = next(line for line in printed.splitlines() if line.startswith("outcome records"))
    assert f"failed {missing}" in outcomes
    assert missing > 0

    # A second run finds the profiles by title, points them at its own receiver and
    # rotates their secrets; signatures still verify.
    out = io.StringIO()
    options = DemoOptions(
        api_url=stack.api_url,
        api_key=account["api_key"],
        account_id=account["id"],
        rate=100,
        duration_s=1.5,
        failure_share=0.0,
        seed=12,
        settle_s=10,
    )
    stats = await run_demo(options, stack.settings(), out)
    assert "profiles created 0, reused 5" in out.getvalue()
    assert stats.bad_signatures == 0
    assert stats.settled()
    rows = stats.by_event
    assert {"sms.send", "whatsapp.status", "chatbot.action"} <= set(rows)
    assert all(r.delivered == r.produced - r.expected_skips for r in rows.values())
    assert stats.outcome_counts()["delivered"] == sum(r.delivered for r in rows.values())
