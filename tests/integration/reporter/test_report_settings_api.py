"""Report settings and send-now on the profile-api."""

from __future__ import annotations

import asyncpg
import pytest

from tests.integration.reporter.helpers import Client

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


async def test_send_now_status_follows_the_request_and_is_the_accounts_own(
    api_server: Client, pool: asyncpg.Pool
) -> None:
    api = await api_server.new_account()
    await api.call("PUT", "/v1/callback-reports/settings", json=VALID)
    _, accepted = await api.call("POST", "/v1/callback-reports/send-now")
    path = f"/v1/callback-reports/send-now/{accepted['request_id']}"
    status, body = await api.call("GET", path)
    assert (status, body["status"], body["sent_at"]) == (200, "queued", None)
    # The reporter's part (tested with a real scheduler in test_report_emails and the
    # web page's tests): a failed attempt, then the email sent.
    await pool.execute(
        "UPDATE report_runs SET last_error = 'smtp down' WHERE id = $1", accepted["request_id"]
    )
    assert (await api.call("GET", path))[1]["status"] == "retrying"
    await pool.execute(
        "UPDATE report_runs SET sent_at = now(), last_error = NULL WHERE id = $1",
        accepted["request_id"],
    )
    status, body = await api.call("GET", path)
    assert (status, body["status"]) == (200, "sent")
    assert "smtp" not in str(body)
    other = await api_server.new_account()
    for wrong in (path, "/v1/callback-reports/send-now/x1", "/v1/callback-reports/send-now/0"):
        assert (await other.call("GET", wrong))[0] == 404


async def test_timezones_lists_what_the_settings_accept(api_server: Client) -> None:
    api = await api_server.new_account()
    status, body = await api.call("GET", "/v1/callback-reports/timezones")
    assert status == 200
    zones = body["timezones"]
    assert zones == sorted(zones)
    assert {"UTC", "Asia/Kolkata", "America/New_York"} <= set(zones)
    for zone in (zones[0], zones[-1]):
        put = await api.call(
            "PUT", "/v1/callback-reports/settings", json={**VALID, "timezone": zone}
        )
        assert put[0] == 200, put
