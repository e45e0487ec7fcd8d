"""Fixtures of the bulk recovery tests: profile-api replicas on a database of the test
alone (a replica claims *any* running recovery, so the shared database would let other
tests' apps take this test's recoveries), seeded delivery-log rows, the redeliver topic.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
import pytest
from aiohttp import web
from callbacks.db import create_pool
from callbacks.kafka import ensure_topics
from callbacks.models.outcomes import RedeliverRequest
from callbacks.settings import Settings
from pydantic import SecretStr

from tests.integration.api.conftest import Api, start_app
from tests.integration.dispatcher.conftest import read_topic

__all__ = [
    "Api",
    "Replica",
    "Seeded",
    "create_profile",
    "problem_fields",
    "redeliver_requests",
    "seed",
]


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


@dataclass
class Replica:
    """One profile-api process's app on a free port."""

    runner: web.AppRunner
    base: str

    @classmethod
    async def start(cls, settings: Settings) -> Replica:
        runner, base = await start_app(settings)
        return cls(runner, base)

    async def stop(self) -> None:
        await self.runner.cleanup()


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


async def create_profile(api: Api, url: str = "https://example.com/hook") -> str:
    body = {
        "title": "recovered",
        "channel": "sms",
        "events": ["sms.send"],
        "url": url,
        "body_type": "json",
        "body": '{"id": "{{message_id}}", "status": "{{status}}"}',
    }
    reply = await api.call("POST", "/v1/callback-profiles", json=body)
    assert reply.status == 201, reply.body
    profile_id: str = reply.body["id"]
    return profile_id


@dataclass(frozen=True)
class Seeded:
    delivery_id: str
    status: str
    first_attempted_at: datetime
    attempt: int = 3
    source: tuple[str, int, int] | None = ("sms.send", 0, 0)
    event_id: str | None = None


async def seed(pool: asyncpg.Pool, account: str, profile: str, rows: list[Seeded]) -> None:
    """Delivery-log rows as the reporter writes them (no body, the event's position)."""
    await pool.executemany(
        """INSERT INTO deliveries (delivery_id, account_id, profile_id, event_id, event,
               channel, attempt, attempt_id, status, final, http_status, error, latency_ms,
               first_attempted_at, last_attempted_at, source_topic, source_partition,
               source_offset)
           VALUES ($1, $2, $3, $4, 'sms.send', 'sms', $5, $6, $7, $8, NULL, NULL, 1.0,
                   $9, $9, $10, $11, $12)""",
        [
            (
                r.delivery_id,
                uuid.UUID(account),
                uuid.UUID(profile),
                r.event_id or f"ev-{r.delivery_id}",
                r.attempt,
                f"{r.delivery_id}:{r.attempt}",
                r.status,
                r.status != "retrying",
                r.first_attempted_at,
                *(r.source or (None, None, None)),
            )
            for r in rows
        ],
    )


async def redeliver_requests(settings: Settings) -> list[RedeliverRequest]:
    records = await read_topic(settings, settings.topics.redeliver)
    return [RedeliverRequest.model_validate(orjson.loads(r.value)) for r in records]


def problem_fields(body: Any) -> list[str]:
    return [e["field"] for e in body.get("errors", [])]
