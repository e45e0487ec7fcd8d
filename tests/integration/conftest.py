"""Fixtures shared by more than one directory of integration tests: a loopback sink (the
dispatcher and receiver tests), and the database pool, an outcome producer, a fresh
reporter metrics registry and a real aiosmtpd server (the reporter and receiver tests).
A directory's own conftest may override any of them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from callbacks.kafka import make_producer
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from prometheus_client import CollectorRegistry
from reporter.metrics import ReporterMetrics

from tests.integration.dispatcher.sink import Sink
from tests.integration.reporter.helpers import Mailbox


@pytest.fixture
async def pool(db_pool: Any) -> asyncpg.Pool:
    result: asyncpg.Pool = db_pool
    return result


@pytest.fixture
async def producer(topics: Settings) -> AsyncIterator[AIOKafkaProducer]:
    producer = make_producer(topics)
    await producer.start()
    try:
        yield producer
    finally:
        await producer.stop()


@pytest.fixture
def metrics() -> ReporterMetrics:
    return ReporterMetrics(CollectorRegistry())


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    from aiosmtpd.controller import Controller

    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


@pytest.fixture
async def sink() -> AsyncIterator[Sink]:
    server = Sink()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
