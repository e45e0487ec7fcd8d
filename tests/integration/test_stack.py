"""The local stack's own parts: migrations and topic creation on the real servers."""

import asyncio

import asyncpg
from aiokafka.admin import AIOKafkaAdminClient
from callbacks.db import migrate
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings

from tests.helpers import KAFKA_FACING, eventually

pytestmark = KAFKA_FACING


async def test_migrations_are_idempotent_and_safe_concurrently(migrated_database: str) -> None:
    results = await asyncio.gather(migrate(migrated_database), migrate(migrated_database))
    assert results == [[], []]
    conn = await asyncpg.connect(migrated_database)
    try:
        names = [
            r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations ORDER BY name")
        ]
    finally:
        await conn.close()
    assert names[0].startswith("0001_")


async def test_ensure_topics_creates_every_topic_once(settings: Settings) -> None:
    first = await ensure_topics(settings)
    assert set(first) == set(settings.topics.all())
    assert await ensure_topics(settings) == []
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        # The admin client asks one node; on the cluster a node restarted by an earlier
        # fault test can list a just-created topic a moment later than the controller.
        async def listed() -> bool:
            return set(settings.topics.all()) <= set(await admin.list_topics())

        await eventually(listed, timeout_s=30, interval_s=0.2, what="every topic listed")
    finally:
        await admin.close()
