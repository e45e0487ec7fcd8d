"""Session fixtures: one real PostgreSQL and one real Kafka-protocol broker per run.

Both are started by the same launchers as ``make run``, on free ports, and stopped at
the end. ``--database-url`` / ``--kafka-bootstrap`` point the suite at running servers
instead. Every test gets its own topic prefix and accounts, so tests never see each
other's records.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from callbacks.db import create_pool, migrate
from callbacks.devstack.broker import Broker
from callbacks.devstack.postgres import PostgresServer
from callbacks.kafka import ensure_topics
from callbacks.logging import configure_logging
from callbacks.settings import Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-url", default=None, help="use this PostgreSQL instead of starting one"
    )
    parser.addoption(
        "--kafka-bootstrap", default=None, help="use this broker instead of starting one"
    )


def pytest_configure(config: pytest.Config) -> None:
    configure_logging("console", "warning", cache=False)


@pytest.fixture(scope="session")
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    given = request.config.getoption("--database-url")
    if given:
        yield given
        return
    server = PostgresServer()
    server.start()
    try:
        yield server.dsn
    finally:
        server.stop()


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest) -> Iterator[Broker | None]:
    if request.config.getoption("--kafka-bootstrap"):
        yield None
        return
    server = Broker()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_bootstrap(request: pytest.FixtureRequest, broker: Broker | None) -> str:
    given: str | None = request.config.getoption("--kafka-bootstrap")
    if given:
        return given
    assert broker is not None
    return broker.bootstrap


@pytest.fixture(scope="session")
async def migrated_database(database_url: str) -> str:
    # PostgreSQL listens a moment before it accepts connections ("the database system is
    # starting up"); on a loaded machine that window is wide enough to fail the first
    # connect, so retry that one error until a deadline.
    deadline = time.monotonic() + 30.0
    while True:
        try:
            await migrate(database_url)
            return database_url
        except asyncpg.CannotConnectNowError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)


@pytest.fixture(scope="session")
def master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def unique(prefix: str = "t") -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


@pytest.fixture
def settings(migrated_database: str, kafka_bootstrap: str, master_key: str) -> Settings:
    """Settings for one test: its own topic namespace, a fast retry schedule."""
    return Settings(
        database_url=migrated_database,  # type: ignore[arg-type]
        kafka_bootstrap=kafka_bootstrap,
        kafka_partitions=3,
        topic_prefix=f"{unique()}.",
        master_key=master_key,  # type: ignore[arg-type]
        admin_token="test-admin-token",  # type: ignore[arg-type]
        allow_private_targets=True,
        retry_schedule="200ms,400ms",
        delivery_timeout="2s",
        api_host="127.0.0.1",
        log_format="console",
    )


@pytest.fixture
async def topics(settings: Settings) -> Settings:
    """The test's topics, created on the broker."""
    await ensure_topics(settings)
    return settings


@pytest.fixture
async def db_pool(migrated_database: str) -> AsyncIterator[object]:
    pool = await create_pool(migrated_database)
    try:
        yield pool
    finally:
        await pool.close()
