"""Fixtures for the receiver-health tests: settings with short group sessions, mail
settings for the SMTP server and the health rig (the sink, pool, producer, metrics and
SMTP server fixtures come from the integration conftest)."""

from __future__ import annotations

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from callbacks.settings import Settings

from tests.integration.receiver.helpers import HealthRig
from tests.integration.reporter.helpers import Mailbox


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Short group sessions (joins take about a second on the test broker)."""
    return settings.model_copy(update={"consumer_session_timeout": "2s"})


@pytest.fixture
async def mail_settings(topics: Settings, smtp_server: tuple[Mailbox, int]) -> Settings:
    return topics.model_copy(
        update={
            "smtp_port": smtp_server[1],
            "smtp_from": "alerts@test.local",
            "auto_disable_after": "5s",  # tiny, so a test can walk a streak past it
        }
    )


@pytest.fixture
async def rig(mail_settings: Settings, pool: asyncpg.Pool, producer: AIOKafkaProducer) -> HealthRig:
    return HealthRig(mail_settings, pool, producer)
