"""The report schedule looks at every enabled account (and the reporter process runs it
on the real clock), so each test here has a database of its own: what is due is decided
by the test's accounts and its ``now`` alone, never by other tests' accounts or by the
day the suite runs."""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest
from callbacks.db import create_pool
from callbacks.settings import Settings
from pydantic import SecretStr


@pytest.fixture
async def topics(topics: Settings, own_database: str) -> Settings:
    return topics.model_copy(update={"database_url": SecretStr(own_database)})


@pytest.fixture
async def pool(topics: Settings) -> AsyncIterator[asyncpg.Pool]:
    own = await create_pool(topics.require_database_url())
    try:
        yield own
    finally:
        await own.close()
