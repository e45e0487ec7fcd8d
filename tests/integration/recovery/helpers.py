"""Helpers of the bulk recovery tests: a profile-api replica, a profile made through the API,
seeded delivery-log rows, the redeliver topic read back, and a problem body's fields."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import orjson
from aiohttp import web
from callbacks.models.outcomes import RedeliverRequest
from callbacks.settings import Settings

from tests.integration.api.helpers import Api, start_app
from tests.integration.dispatcher.helpers import read_topic


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
