"""Helpers of the receiver-health tests: an account with a report recipient, and ingest
with the health rules wired as in ``Reporter``."""

from __future__ import annotations

import uuid

import asyncpg
from aiokafka import AIOKafkaProducer
from callbacks.settings import Settings
from prometheus_client import CollectorRegistry
from reporter.auto_disable import ProfileHealth
from reporter.ingest import Ingestor
from reporter.mail import Mailer
from reporter.metrics import ReporterMetrics
from reporter.notices import Notifier

from tests.integration.reporter.helpers import FAST_GROUP, create_account

RECIPIENT = "ops@customer.test"


async def account_with_recipient(pool: asyncpg.Pool) -> uuid.UUID:
    account = await create_account(pool, "receiver-test")
    await pool.execute(
        "INSERT INTO report_settings (account_id, enabled, frequency, recipients, timezone)"
        " VALUES ($1, false, 'daily', $2, 'UTC')",
        account,
        [RECIPIENT],
    )
    return account


class HealthRig:
    """Ingest with the health rules wired as in ``Reporter``, and the notifier beside it."""

    def __init__(self, settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> None:
        self.settings = settings
        self.pool = pool
        self.producer = producer
        self.metrics = ReporterMetrics(CollectorRegistry())
        self.group = f"{settings.topic_prefix}health"  # successive ingests read on
        self.notifier = Notifier(settings, pool, self.metrics, mailer=Mailer(settings))
        self.health = ProfileHealth(
            pool=pool,
            profiles_topic=settings.topics.profiles,
            disable_after_s=settings.auto_disable_after,
            metrics=self.metrics,
        )

    async def ingest(self, group: str | None = None) -> int:
        ingestor = Ingestor(
            self.settings,
            self.pool,
            self.producer,
            self.metrics,
            group_id=group or self.group,
            consumer_options=FAST_GROUP,
            health=self.health,
        )
        return await ingestor.drain(timeout_s=20)
