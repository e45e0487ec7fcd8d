"""Fixtures for the profile-api tests: the real app on a free loopback port.

Each test gets its own topic prefix (from ``settings``) and its own account, so the
tests share one PostgreSQL and one broker without seeing each other's data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings

from tests.helpers import KafkaTarget, unique
from tests.integration.api.helpers import Api, start_app


@pytest.fixture(scope="session")
async def api_settings(migrated_database: str, kafka: KafkaTarget, master_key: str) -> Settings:
    """Settings of the app the tests share (as the root ``settings`` fixture, session-wide),
    with its topics created. Tests stay apart by account; the outbox tests that need a
    quiet topic or their own broker start their own app."""
    settings = Settings(
        database_url=migrated_database,
        **kafka.fields(),
        kafka_partitions=3,
        topic_prefix=f"{unique('api')}.",
        master_key=master_key,
        admin_token="test-admin-token",
        # Test calls from generated profiles must not reach loopback services.
        allow_private_targets=False,
        allow_plain_http=True,
        delivery_timeout="2s",
        api_host="127.0.0.1",
        log_format="console",
    )
    await ensure_topics(settings)
    return settings


@pytest.fixture(scope="session")
async def server(api_settings: Settings) -> AsyncIterator[str]:
    """One running app for the session: starting one per test cost ~0.3 s each."""
    runner, base = await start_app(api_settings)
    try:
        yield base
    finally:
        await runner.cleanup()


@pytest.fixture
async def anonymous(server: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(server, session)


@pytest.fixture
async def api(anonymous: Api) -> Api:
    """A client authenticated as a fresh account."""
    return await anonymous.new_account()
