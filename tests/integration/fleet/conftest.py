"""Fixtures of the fault tests: the namespace's settings and topics, the sink, the fleet."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from callbacks_dev.devstack.kafka_cluster import KafkaCluster

from tests.helpers import KafkaTarget, drop_namespace
from tests.integration.fleet.harness import PARTITIONS, Fleet
from tests.integration.fleet.sink import CountingSink

# Nothing in the first four tests is retried (the sink answers 200); a short schedule
# keeps the topics the group subscribes to few (sources, two retry topics, redeliver).
SCHEDULE = "1s,2s"


@pytest.fixture
async def fleet_settings(kafka: KafkaTarget, master_key: str) -> AsyncIterator[Settings]:
    """Settings of one test's namespace: ``PARTITIONS`` per topic, topics created (and
    deleted afterwards on the Kafka cluster)."""
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
    yield settings
    await drop_namespace(settings)


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


@pytest.fixture
def restored_cluster(kafka: KafkaTarget) -> Iterator[KafkaCluster]:
    """The session's Kafka cluster, for a test that breaks it: afterwards, whatever
    happened (a failed assertion, a timeout), every node runs again and the metadata
    lists them all, so later tests have three brokers."""
    cluster = kafka.cluster
    assert cluster is not None, "a broker-fault test runs on the Kafka cluster only"
    try:
        yield cluster
    finally:
        cluster.resume()
        for node in cluster.nodes:
            if not node.alive():
                cluster.start_node(node.node_id)
        # ``wait_for_brokers`` runs its own event loop: keep it off the test's thread.
        failure: list[BaseException] = []

        def wait() -> None:
            try:
                cluster.wait_for_brokers(len(cluster.nodes), 120.0)
            except BaseException as exc:  # handed to the test's thread below
                failure.append(exc)

        waiter = threading.Thread(target=wait, name="wait-for-brokers")
        waiter.start()
        waiter.join()
        if failure:
            raise failure[0]
