"""Session fixtures: one real PostgreSQL and the real brokers per run.

They are started by the same launchers as ``make run``, on free ports, and stopped at
the end. Every Kafka-facing test module runs twice: on the embedded Tansu broker and on
a local 3-node Apache Kafka cluster (``--brokers`` narrows that). ``--database-url`` and
``--kafka-bootstrap`` point the suite at running servers instead. Every test gets its
own topic prefix and accounts, so tests never see each other's records.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import time
from collections.abc import AsyncIterator, Iterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from callbacks.db import create_pool, migrate
from callbacks.kafka import ensure_topics
from callbacks.logging import configure_logging
from callbacks.settings import Settings
from callbacks_dev.devstack.broker import Broker
from callbacks_dev.devstack.kafka_cluster import KafkaCluster
from callbacks_dev.devstack.postgres import PostgresServer

from tests.helpers import BROKER_KINDS, KafkaTarget, drop_namespace, unique


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--database-url", default=None, help="use this PostgreSQL instead of starting one"
    )
    parser.addoption(
        "--kafka-bootstrap", default=None, help="use this broker instead of starting one"
    )
    parser.addoption(
        "--brokers",
        default=",".join(BROKER_KINDS),
        help="comma-separated brokers the Kafka-facing tests run on (tansu, kafka)",
    )


def pytest_configure(config: pytest.Config) -> None:
    configure_logging("console", "warning", cache=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Marks what ``make test`` runs in its second process: every test on the Apache
    Kafka cluster (``kafka_cluster``), the fleet fault tests (``fleet``), and the
    deployment-file tests (``deploy``), which even out the two processes' lengths."""
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("kafka") == "kafka":
            item.add_marker(pytest.mark.kafka_cluster)
        if "fleet" in item.path.parts:
            item.add_marker(pytest.mark.fleet)
        if "deploy" in item.path.parts:
            item.add_marker(pytest.mark.deploy)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Every module and collected test lives until the end: the collector stops scanning them.

    A full collection walks every tracked object, so without this each one walked the
    hundred thousand objects of the imports and the collected tests again.
    """
    gc.collect()
    gc.freeze()


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


def _broker_kinds(config: pytest.Config) -> list[str]:
    if config.getoption("--kafka-bootstrap"):
        return ["external"]
    wanted = [k.strip() for k in config.getoption("--brokers").split(",") if k.strip()]
    unknown = set(wanted) - set(BROKER_KINDS)
    if unknown:
        raise pytest.UsageError(f"--brokers: unknown {sorted(unknown)}; use {BROKER_KINDS}")
    return wanted


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kafka" not in metafunc.fixturenames:
        return
    kinds = _broker_kinds(metafunc.config)
    only = metafunc.definition.get_closest_marker("brokers")
    if kinds != ["external"]:
        wanted = only.args if only is not None else BROKER_KINDS[:1]
        kinds = [k for k in kinds if k in wanted]
    if not kinds:
        metafunc.parametrize("kafka", [pytest.param("none", marks=pytest.mark.skip)])
        return
    metafunc.parametrize("kafka", kinds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def tansu() -> Iterator[Broker]:
    server = Broker()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def kafka_cluster() -> Iterator[KafkaCluster]:
    cluster = KafkaCluster(3)
    cluster.start(say=lambda line: print(line, flush=True))
    try:
        yield cluster
    finally:
        cluster.stop(graceful=False)  # its data goes with the session


@pytest.fixture(scope="session")
def kafka(request: pytest.FixtureRequest) -> KafkaTarget:
    """The broker this test runs on (parametrized by ``pytest_generate_tests``)."""
    kind = getattr(request, "param", None) or _broker_kinds(request.config)[0]
    if kind == "external":
        return KafkaTarget("external", request.config.getoption("--kafka-bootstrap"))
    if kind == "kafka":
        cluster: KafkaCluster = request.getfixturevalue("kafka_cluster")
        return KafkaTarget("kafka", cluster.bootstrap, 3, 2, True, cluster)
    server: Broker = request.getfixturevalue("tansu")
    return KafkaTarget("tansu", server.bootstrap)


@pytest.fixture(scope="session")
def kafka_bootstrap(kafka: KafkaTarget) -> str:
    return kafka.bootstrap


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


def _on_database(dsn: str, name: str) -> str:
    """The same server and credentials as ``dsn``, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
async def database_template(migrated_database: str) -> AsyncIterator[str]:
    """A migrated database that nothing connects to, copied by ``own_database``.

    PostgreSQL copies a template only while nobody is connected to it, which the shared
    database never is; so this one is made and migrated once, then left alone.
    """
    name = unique("tmpl")
    conn = await asyncpg.connect(migrated_database)
    try:
        await conn.execute(f"CREATE DATABASE {name}")
    finally:
        await conn.close()
    await migrate(_on_database(migrated_database, name))
    try:
        yield name
    finally:
        conn = await asyncpg.connect(migrated_database)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


@pytest.fixture
async def own_database(migrated_database: str, database_template: str) -> AsyncIterator[str]:
    """A migrated database of this test alone, dropped after it.

    For tests whose code looks at *every* account (the report schedule): in the shared
    database they would see other tests' accounts, and whether those are due depends on
    the day the suite runs.
    """
    name = unique("db")
    conn = await asyncpg.connect(migrated_database)
    try:
        await conn.execute(f"CREATE DATABASE {name} TEMPLATE {database_template}")
    finally:
        await conn.close()
    try:
        yield _on_database(migrated_database, name)
    finally:
        conn = await asyncpg.connect(migrated_database)
        try:
            await conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        finally:
            await conn.close()


@pytest.fixture(scope="session")
def master_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
async def settings(
    migrated_database: str, kafka: KafkaTarget, master_key: str
) -> AsyncIterator[Settings]:
    """Settings for one test: its own topic namespace, a fast retry schedule. Whatever
    topics the test made in that namespace are deleted when it ends (``drop_namespace``).
    """
    own = Settings(
        database_url=migrated_database,  # type: ignore[arg-type]
        **kafka.fields(),
        kafka_partitions=3,
        topic_prefix=f"{unique()}.",
        master_key=master_key,  # type: ignore[arg-type]
        admin_token="test-admin-token",  # type: ignore[arg-type]
        allow_private_targets=True,
        allow_plain_http=True,  # the sinks are plain http on loopback
        retry_schedule="200ms,400ms",
        delivery_timeout="2s",
        api_host="127.0.0.1",
        log_format="console",
    )
    yield own
    await drop_namespace(own)


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
