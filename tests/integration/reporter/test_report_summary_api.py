"""``GET /v1/callback-reports/summary``: the reporter's counters per local day or hour.

Outcomes go in through the reporter's own ingest (``write_batch``) at fixed instants, and
every request names its range, so nothing here depends on the day the suite runs.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from reporter.outcome_store import write_batch

from tests.integration.reporter.helpers import Client, create_profile, make_outcome

# Tuesday 24 Nov 2026 00:00 in Kolkata (+05:30).
IST_MIDNIGHT = datetime(2026, 11, 23, 18, 30, tzinfo=UTC)
SUMMARY = "/v1/callback-reports/summary"


async def use_timezone(api: Client, timezone: str) -> None:
    status, body = await api.call(
        "PUT",
        "/v1/callback-reports/settings",
        json={"enabled": False, "frequency": "daily", "recipients": [], "timezone": timezone},
    )
    assert status == 200, body


async def seed(pool: asyncpg.Pool, account: str, profile: uuid.UUID, *outcomes: Any) -> None:
    await write_batch(
        pool,
        [
            make_outcome(uuid.UUID(account), profile, status=status, attempted_at=at)
            for status, at in outcomes
        ],
    )


async def test_days_in_the_account_timezone_with_totals_and_profiles(
    api_server: Client, pool: asyncpg.Pool
) -> None:
    api = await api_server.new_account()
    assert api.account
    await use_timezone(api, "Asia/Kolkata")
    orders = await create_profile(pool, uuid.UUID(api.account), "Orders")
    alerts = await create_profile(pool, uuid.UUID(api.account), "Alerts")
    minute = timedelta(minutes=1)
    await seed(
        pool,
        api.account,
        orders,
        ("delivered", IST_MIDNIGHT - minute),  # Mon 23 Nov, 23:59 local
        ("delivered", IST_MIDNIGHT),  # Tue 24 Nov, 00:00 local
        ("delivered", IST_MIDNIGHT + timedelta(hours=5)),
        ("failed", IST_MIDNIGHT + timedelta(hours=23, minutes=59)),
        ("retrying", IST_MIDNIGHT + timedelta(hours=1)),  # not final: not counted
        ("delivered", IST_MIDNIGHT + timedelta(days=2)),  # Thu 26 Nov: outside the range
    )
    await seed(pool, api.account, alerts, ("failed", IST_MIDNIGHT + timedelta(days=1)))
    # Another account's callbacks in the same hours never show.
    other = await api_server.new_account()
    assert other.account
    stranger = await create_profile(pool, uuid.UUID(other.account), "Stranger")
    await seed(pool, other.account, stranger, ("delivered", IST_MIDNIGHT))

    status, body = await api.call(
        "GET", SUMMARY, params={"from": "2026-11-23", "to": "2026-11-25", "bucket": "day"}
    )
    assert status == 200, body
    assert body["timezone"] == "Asia/Kolkata"
    assert body["buckets"] == [
        {"start": "2026-11-23T00:00:00+05:30", "delivered": 1, "failed": 0},
        {"start": "2026-11-24T00:00:00+05:30", "delivered": 2, "failed": 1},
        {"start": "2026-11-25T00:00:00+05:30", "delivered": 0, "failed": 1},
    ]
    assert body["totals"] == {"delivered": 3, "failed": 2}
    assert body["profiles"] == [
        {"id": str(alerts), "title": "Alerts", "delivered": 0, "failed": 1},
        {"id": str(orders), "title": "Orders", "delivered": 3, "failed": 1},
    ]

    # One profile only: its buckets, its totals, itself in the list.
    status, body = await api.call(
        "GET",
        SUMMARY,
        params={"from": "2026-11-23", "to": "2026-11-25", "profile_id": str(alerts)},
    )
    assert status == 200, body
    assert [b["failed"] for b in body["buckets"]] == [0, 0, 1]
    assert body["totals"] == {"delivered": 0, "failed": 1}
    assert [p["id"] for p in body["profiles"]] == [str(alerts)]


async def test_hours_from_the_one_holding_from_to_the_one_holding_to(
    api_server: Client, pool: asyncpg.Pool
) -> None:
    api = await api_server.new_account()
    assert api.account
    await use_timezone(api, "Asia/Kolkata")
    orders = await create_profile(pool, uuid.UUID(api.account), "Orders")
    ten = IST_MIDNIGHT + timedelta(hours=10)  # 10:00 local = 04:30Z
    await seed(
        pool,
        api.account,
        orders,
        ("delivered", ten),
        ("delivered", ten + timedelta(minutes=59)),
        ("failed", ten + timedelta(hours=2, minutes=45)),
        ("delivered", ten + timedelta(hours=3)),  # 13:00: after the last bucket
    )
    status, body = await api.call(
        "GET",
        SUMMARY,
        # Date-times inside the first and last hour; one in UTC, one without an offset
        # (local time).
        params={"from": "2026-11-24T04:45:00Z", "to": "2026-11-24T12:10:00", "bucket": "hour"},
    )
    assert status == 200, body
    assert body["buckets"] == [
        {"start": "2026-11-24T10:00:00+05:30", "delivered": 2, "failed": 0},
        {"start": "2026-11-24T11:00:00+05:30", "delivered": 0, "failed": 0},
        {"start": "2026-11-24T12:00:00+05:30", "delivered": 0, "failed": 1},
    ]


async def test_a_day_with_a_dst_change_has_25_hours_and_one_bucket(
    api_server: Client, pool: asyncpg.Pool
) -> None:
    api = await api_server.new_account()
    assert api.account
    await use_timezone(api, "America/New_York")  # clocks go back at 02:00 on 1 Nov 2026
    orders = await create_profile(pool, uuid.UUID(api.account), "Orders")
    # 01:30 local happens twice: 05:30Z (EDT) and 06:30Z (EST).
    await seed(
        pool,
        api.account,
        orders,
        ("delivered", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
        ("failed", datetime(2026, 11, 1, 6, 30, tzinfo=UTC)),
    )
    params = {"from": "2026-11-01", "to": "2026-11-01"}
    status, body = await api.call("GET", SUMMARY, params={**params, "bucket": "hour"})
    assert status == 200, body
    assert len(body["buckets"]) == 25
    twice = [b for b in body["buckets"] if b["start"].startswith("2026-11-01T01:00")]
    assert twice == [
        {"start": "2026-11-01T01:00:00-04:00", "delivered": 1, "failed": 0},
        {"start": "2026-11-01T01:00:00-05:00", "delivered": 0, "failed": 1},
    ]
    status, body = await api.call("GET", SUMMARY, params={**params, "bucket": "day"})
    assert body["buckets"] == [{"start": "2026-11-01T00:00:00-04:00", "delivered": 1, "failed": 1}]


async def test_an_account_without_settings_counts_in_utc(
    api_server: Client, pool: asyncpg.Pool
) -> None:
    api = await api_server.new_account()
    assert api.account
    orders = await create_profile(pool, uuid.UUID(api.account), "Orders")
    await seed(pool, api.account, orders, ("delivered", IST_MIDNIGHT))  # 18:30Z on the 23rd
    status, body = await api.call("GET", SUMMARY, params={"from": "2026-11-23", "to": "2026-11-24"})
    assert status == 200, body
    assert body["timezone"] == "UTC"
    assert [(b["start"], b["delivered"]) for b in body["buckets"]] == [
        ("2026-11-23T00:00:00Z", 1),
        ("2026-11-24T00:00:00Z", 0),
    ]


async def test_the_summary_needs_a_key(api_server: Client) -> None:
    assert (await api_server.call("GET", SUMMARY))[0] == 401
    wrong = Client(api_server.base, api_server.session, "cbk_wrong", None)
    assert (await wrong.call("GET", SUMMARY))[0] == 401


async def test_another_accounts_profile_is_a_404_and_its_counts_stay_its_own(
    api_server: Client, pool: asyncpg.Pool
) -> None:
    owner = await api_server.new_account()
    assert owner.account
    theirs = await create_profile(pool, uuid.UUID(owner.account), "Theirs")
    await seed(pool, owner.account, theirs, ("delivered", IST_MIDNIGHT))
    api = await api_server.new_account()
    window = {"from": "2026-11-23", "to": "2026-11-24"}
    for profile in (str(theirs), str(uuid.uuid4())):
        status, body = await api.call("GET", SUMMARY, params={**window, "profile_id": profile})
        assert status == 404, body
    status, body = await api.call("GET", SUMMARY, params=window)
    assert status == 200, body
    assert body["totals"] == {"delivered": 0, "failed": 0}
    assert body["profiles"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"bucket": "week"}, "bucket"),
        ({"profile_id": "not-a-uuid"}, "profile_id"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-11-25", "to": "2026-11-24"}, "from"),
        ({"from": "2026-01-01", "to": "2026-02-15", "bucket": "hour"}, "from"),
        ({"from": "2020-01-01", "to": "2026-01-01"}, "from"),
        ({"from": "9999-12-30", "to": "9999-12-31"}, "to"),
    ],
)
async def test_bad_parameters_are_a_422_naming_the_field(
    api_server: Client, params: dict[str, str], field: str
) -> None:
    api = await api_server.new_account()
    status, body = await api.call("GET", SUMMARY, params=params)
    assert status == 422, body
    assert [e["field"] for e in body["errors"]] == [field]
