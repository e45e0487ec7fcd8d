"""Helpers of the reporter tests: accounts and profiles in the database, outcome records
and their producer, ingest progress, a mailbox for the SMTP server and an API client."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import asyncpg
import orjson
from aiokafka import AIOKafkaProducer
from callbacks.models.outcomes import Outcome
from callbacks.settings import Settings
from reporter.progress import PartitionProgress, record_progress, register_partitions


async def create_account(pool: asyncpg.Pool, name: str = "acme") -> uuid.UUID:
    account_id = uuid.uuid4()
    await pool.execute("INSERT INTO accounts (id, name) VALUES ($1, $2)", account_id, name)
    return account_id


async def create_profile(pool: asyncpg.Pool, account_id: uuid.UUID, title: str) -> uuid.UUID:
    profile_id = uuid.uuid4()
    now = datetime.now(UTC)
    await pool.execute(
        """INSERT INTO callback_profiles
           (id, account_id, title, channel, method, enabled, document, created_at, updated_at)
           VALUES ($1, $2, $3, 'sms', 'POST', true, $4, $5, $5)""",
        profile_id,
        account_id,
        title,
        {"title": title},
        now,
    )
    return profile_id


def make_outcome(
    account_id: uuid.UUID,
    profile_id: uuid.UUID,
    *,
    delivery_id: str | None = None,
    attempt: int = 1,
    status: str = "delivered",
    final: bool | None = None,
    attempted_at: datetime | None = None,
    http_status: int | None = 200,
    error: str | None = None,
    source: tuple[str, int, int] | None = ("sms.send", 0, 7),
) -> Outcome:
    delivery_id = delivery_id or uuid.uuid4().hex
    return Outcome(
        attempt_id=f"{delivery_id}:{attempt}",
        delivery_id=delivery_id,
        event_id=f"ev-{delivery_id}",
        account_id=str(account_id),
        profile_id=str(profile_id),
        channel="sms",
        event="sms.send",
        attempt=attempt,
        status=status,
        final=(status != "retrying") if final is None else final,
        http_status=http_status,
        error=error,
        latency_ms=12.5,
        attempted_at=attempted_at or datetime.now(UTC),
        source_topic=source[0] if source else None,
        source_partition=source[1] if source else None,
        source_offset=source[2] if source else None,
    )


async def mark_ingested(pool: asyncpg.Pool, settings: Settings, at: datetime) -> None:
    """Record ingest caught up with every outcome partition at ``at``, as ingest does.

    For tests that write outcomes straight into the store and run the report schedule,
    which waits for ingest to pass a period's end.
    """
    topic = settings.topics.outcomes
    count = settings.kafka_partitions
    await register_partitions(pool, topic, count)
    await record_progress(
        pool, topic, [PartitionProgress(p, caught_up_at=at) for p in range(count)]
    )


async def produce(producer: AIOKafkaProducer, topic: str, outcomes: list[Outcome]) -> None:
    futures = [
        await producer.send(topic, key=o.delivery_id.encode(), value=o.model_dump_json().encode())
        for o in outcomes
    ]
    for future in futures:
        await future


# Tansu holds a group join for about half the session timeout; a short one keeps the
# tests fast (production keeps aiokafka's defaults).
FAST_GROUP = {"session_timeout_ms": 2000, "heartbeat_interval_ms": 300}


class Mailbox:
    """Messages received by the aiosmtpd handler, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        parsed = message_from_bytes(raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        self.messages.append(parsed)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"


def json_value(outcome: Outcome) -> bytes:
    return orjson.dumps(outcome.model_dump(mode="json"))


ADMIN = {"Authorization": "Bearer test-admin-token"}


class Client:
    """A tiny client for the profile-api running in this test, as one account."""

    def __init__(self, base: str, session: Any, key: str | None, account: str | None) -> None:
        self.base, self.session, self.key, self.account = base, session, key, account

    async def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"api-key": self.key} if self.key else {}
        async with self.session.request(
            method, self.base + path, json=json, params=params, headers=headers
        ) as response:
            raw = await response.read()
            return response.status, orjson.loads(raw) if raw else None

    async def new_account(self) -> Client:
        async with self.session.post(
            self.base + "/v1/accounts", json={"name": "reporter-test"}, headers=ADMIN
        ) as response:
            assert response.status == 201
            body = await response.json()
        return Client(self.base, self.session, body["api_key"], body["id"])
