"""The delivery log on the profile-api: filters, pagination, isolation, detail, retry."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaConsumer
from callbacks.models.outcomes import RedeliverRequest
from callbacks.settings import Settings
from reporter.outcome_store import write_batch

from tests.integration.reporter.helpers import Client, create_profile, make_outcome

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


async def _seed(pool: asyncpg.Pool, account: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """Five callbacks on two profiles, one hour apart (d0 oldest ... d4 newest)."""
    p1 = await create_profile(pool, account, "One")
    p2 = await create_profile(pool, account, "Two")
    outcomes = [
        make_outcome(account, p1, delivery_id=f"{account}-d0", attempted_at=T0),
        make_outcome(
            account,
            p2,
            delivery_id=f"{account}-d1",
            status="failed",
            http_status=500,
            attempted_at=T0 + timedelta(hours=1),
        ),
        make_outcome(
            account,
            p1,
            delivery_id=f"{account}-d2",
            status="retrying",
            http_status=503,
            attempted_at=T0 + timedelta(hours=2),
        ),
        make_outcome(
            account,
            p1,
            delivery_id=f"{account}-d3",
            status="retrying",
            attempted_at=T0 + timedelta(hours=3),
            http_status=429,
        ),
        make_outcome(
            account,
            p1,
            delivery_id=f"{account}-d3",
            attempt=2,
            attempted_at=T0 + timedelta(hours=3, minutes=5),
        ),
        make_outcome(
            account,
            p2,
            delivery_id=f"{account}-d4",
            source=None,
            attempted_at=T0 + timedelta(days=1),
        ),
    ]
    await write_batch(pool, outcomes)
    return p1, p2


async def test_list_filters_paginates_and_isolates_accounts(
    api_server: Client, pool: asyncpg.Pool
) -> None:
    api = await api_server.new_account()
    other = await api_server.new_account()
    account = uuid.UUID(api.account)
    p1, p2 = await _seed(pool, account)
    await _seed(pool, uuid.UUID(other.account))

    status, body = await api.call("GET", "/v1/deliveries")
    assert status == 200
    ids = [i["delivery_id"].split("-")[-1] for i in body["items"]]
    assert ids == ["d4", "d3", "d2", "d1", "d0"]
    assert body["next_cursor"] is None
    latest = body["items"][1]
    assert (latest["attempt"], latest["status"], latest["final"]) == (2, "delivered", True)
    assert body["items"][0]["retryable"] is False

    async def ids_of(**params: str) -> list[str]:
        status, body = await api.call("GET", "/v1/deliveries", params=params)
        assert status == 200, body
        return [i["delivery_id"].split("-")[-1] for i in body["items"]]

    assert await ids_of(profile_id=str(p2)) == ["d4", "d1"]
    assert await ids_of(status="retrying") == ["d2"]
    assert await ids_of(status="failed", profile_id=str(p1)) == []
    assert await ids_of(
        **{
            "from": (T0 + timedelta(hours=1)).isoformat(),
            "to": (T0 + timedelta(hours=3)).isoformat(),
        }
    ) == ["d2", "d1"]
    assert await ids_of(to="2026-11-20") == ["d3", "d2", "d1", "d0"]
    assert await ids_of(**{"from": "2026-11-21"}) == ["d4"]

    seen: list[str] = []
    cursor = None
    for _ in range(5):
        params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        status, body = await api.call("GET", "/v1/deliveries", params=params)
        assert status == 200
        seen += [i["delivery_id"].split("-")[-1] for i in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == ["d4", "d3", "d2", "d1", "d0"]
    # An empty parameter is an absent one, as on the profile list.
    status, body = await api.call("GET", "/v1/deliveries", params={"limit": "", "status": ""})
    assert status == 200, body
    assert len(body["items"]) == 5

    status, body = await api.call(
        "GET",
        "/v1/deliveries",
        params={"limit": "0", "status": "gone", "profile_id": "x", "cursor": "!!", "from": "y"},
    )
    assert status == 422
    assert {e["field"] for e in body["errors"]} == {
        "limit",
        "status",
        "profile_id",
        "cursor",
        "from",
    }

    # Another account's delivery does not exist for this one.
    status, _ = await api.call("GET", f"/v1/deliveries/{other.account}-d0")
    assert status == 404
    status, _ = await api.call("POST", f"/v1/deliveries/{other.account}-d0/retry")
    assert status == 404
    status, _ = await api_server.call("GET", "/v1/deliveries")
    assert status == 401


async def test_detail_lists_every_attempt(api_server: Client, pool: asyncpg.Pool) -> None:
    api = await api_server.new_account()
    await _seed(pool, uuid.UUID(api.account))
    status, body = await api.call("GET", f"/v1/deliveries/{api.account}-d3")
    assert status == 200
    assert [(a["attempt"], a["status"], a["http_status"]) for a in body["attempts"]] == [
        (1, "retrying", 429),
        (2, "delivered", 200),
    ]
    assert body["attempts"][0]["attempted_at"].startswith("2026-11-20T11:00:00")
    assert body["latency_ms"] == 12.5
    status, _ = await api.call("GET", "/v1/deliveries/nope")
    assert status == 404


async def test_retry_puts_a_redeliver_request_on_the_topic(
    api_server: Client, pool: asyncpg.Pool, topics: Settings
) -> None:
    api = await api_server.new_account()
    await _seed(pool, uuid.UUID(api.account))
    delivery = f"{api.account}-d3"
    status, body = await api.call("POST", f"/v1/deliveries/{delivery}/retry")
    assert status == 202, body
    assert body == {"delivery_id": delivery, "attempt": 3, "status": "queued"}

    consumer = AIOKafkaConsumer(
        topics.topics.redeliver,
        bootstrap_servers=topics.kafka_bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await consumer.getone()
    finally:
        await consumer.stop()
    assert record.key == delivery.encode()
    request = RedeliverRequest.model_validate_json(record.value)
    assert (request.delivery_id, request.attempt, request.account_id) == (delivery, 3, api.account)
    assert (request.source_topic, request.source_partition, request.source_offset) == (
        "sms.send",
        0,
        7,
    )
    assert request.event_id == f"ev-{delivery}"

    status, body = await api.call("POST", f"/v1/deliveries/{api.account}-d4/retry")
    assert status == 409
    assert "position" in body["detail"]
