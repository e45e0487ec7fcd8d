"""Fixtures of the reporter tests: an account in the database and the profile-api on a
free port (the pool, producer, metrics and SMTP server come from the integration
conftest; the helpers are in ``helpers.py`` beside this file)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port

from tests.integration.reporter.helpers import Client, create_account


@pytest.fixture
async def account(pool: asyncpg.Pool) -> uuid.UUID:
    return await create_account(pool)


@pytest.fixture
async def api_server(topics: Settings) -> AsyncIterator[Client]:
    import aiohttp
    from aiohttp import web
    from profile_api.app import create_app

    runner = web.AppRunner(create_app(topics), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            yield Client(f"http://127.0.0.1:{port}", session, None, None)
    finally:
        await runner.cleanup()
