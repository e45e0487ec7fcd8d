"""Report settings and send-now on the profile-api."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.reporter.conftest import Client

VALID = {
    "enabled": True,
    "frequency": "weekly",
    "recipients": ["ops@example.com"],
    "timezone": "Asia/Kolkata",
}


async def test_unconfigured_account_gets_defaults_then_its_saved_settings(
    api_server: Client,
) -> None:
    api = await api_server.new_account()
    status, body = await api.call("GET", "/v1/callback-reports/settings")
    assert (status, body) == (
        200,
        {"enabled": False, "frequency": "daily", "recipients": [], "timezone": "UTC"},
    )
    status, body = await api.call("PUT", "/v1/callback-reports/settings", json=VALID)
    assert (status, body) == (200, VALID)
    other = await api_server.new_account()
    assert (await other.call("GET", "/v1/callback-reports/settings"))[1]["enabled"] is False
    assert (await api.call("GET", "/v1/callback-reports/settings"))[1] == VALID


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"frequency": "hourly"}, "frequency"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../etc/passwd"}, "timezone"),
        ({"recipients": ["not-an-address"]}, "recipients"),
        ({"recipients": ["a@b.com", "x y@b.com"]}, "recipients"),
        ({"recipients": []}, "recipients"),
        ({"enabled": "maybe"}, "enabled"),
        ({"extra": 1}, "extra"),
    ],
)
async def test_invalid_settings_are_a_422_naming_the_field(
    api_server: Client, change: dict[str, object], field: str
) -> None:
    api = await api_server.new_account()
    status, body = await api.call("PUT", "/v1/callback-reports/settings", json={**VALID, **change})
    assert status == 422, body
    assert field in {e["field"].split(".")[0] for e in body["errors"]}


async def test_send_now_records_a_request(api_server: Client, pool: asyncpg.Pool) -> None:
    api = await api_server.new_account()
    status, body = await api.call("POST", "/v1/callback-reports/send-now")
    assert status == 409
    await api.call("PUT", "/v1/callback-reports/settings", json={**VALID, "enabled": False})
    status, body = await api.call("POST", "/v1/callback-reports/send-now")
    assert status == 202
    row = await pool.fetchrow(
        "SELECT account_id::text AS a, kind, sent_at FROM report_runs WHERE id = $1",
        body["request_id"],
    )
    assert row is not None
    assert (row["a"], row["kind"], row["sent_at"]) == (api.account, "now", None)
