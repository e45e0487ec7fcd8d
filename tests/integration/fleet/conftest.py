"""Fixtures of the fault tests: the namespace's settings and topics, the sink, the fleet."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings

from tests.helpers import KafkaTarget
from tests.integration.fleet.harness import PARTITIONS, CountingSink, Fleet

# Nothing in the first four tests is retried (the sink answers 200); a short schedule
# keeps the topics the group subscribes to few (sources, two retry topics, redeliver).
SCHEDULE = "1s,2s"


@pytest.fixture
async def fleet_settings(kafka: KafkaTarget, master_key: str) -> Settings:
    """Settings of one test's namespace: ``PARTITIONS`` per topic, topics created."""
    settings = Settings(
        **kafka.fields(),
        kafka_partitions=PARTITIONS,
        topic_prefix=f"fleet{uuid.uuid4().hex[:8]}.",
        master_key=master_key,
        allow_private_targets=True,
        retry_schedule=SCHEDULE,
        log_format="console",
    )
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def counting_sink() -> AsyncIterator[CountingSink]:
    sink = CountingSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


@pytest.fixture
async def fleet(
    fleet_settings: Settings, counting_sink: CountingSink, tmp_path: Path
) -> AsyncIterator[Fleet]:
    """A fleet with its profile published and no member started yet."""
    fleet = Fleet(fleet_settings, counting_sink, tmp_path)
    await fleet.publish_profile()
    try:
        yield fleet
    finally:
        await fleet.aclose()
