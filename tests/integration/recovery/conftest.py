"""Fixtures of the bulk recovery tests: profile-api replicas on a database of the test
alone (a replica claims *any* running recovery, so the shared database would let other
tests' apps take this test's recoveries) and a client of a fresh account on one (the
helpers are in ``helpers.py`` beside this file).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from callbacks.db import create_pool
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from pydantic import SecretStr

from tests.integration.api.helpers import Api
from tests.integration.recovery.helpers import Replica


@pytest.fixture
async def recovery_settings(settings: Settings, own_database: str) -> Settings:
    """The test's topics (created) and database; recoveries paced fast for the tests."""
    mine = settings.model_copy(
        update={
            "database_url": SecretStr(own_database),
            "recovery_rate": 200.0,
            "recovery_lease": "2s",
            "recovery_poll_interval": "200ms",
        }
    )
    await ensure_topics(mine)
    return mine


@pytest.fixture
async def pool(recovery_settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(recovery_settings.require_database_url())
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture
async def replica(recovery_settings: Settings) -> AsyncIterator[Replica]:
    started = await Replica.start(recovery_settings)
    try:
        yield started
    finally:
        await started.stop()


@pytest.fixture
async def api(replica: Replica) -> AsyncIterator[Api]:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        yield await Api(replica.base, session).new_account()
