"""Settings → Notifications and delivery health on the web page, in headless Chromium.

The browser's clock is fixed (``page.clock``) and the seeded outcomes sit at fixed
instants around it, so what the page shows never depends on the day the suite runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from callbacks.db import create_pool
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from playwright.async_api import Browser, Page, expect
from prometheus_client import CollectorRegistry
from reporter.metrics import ReporterMetrics
from reporter.outcome_store import write_batch
from reporter.schedule import Scheduler

from tests.e2e.helpers import ADMIN_TOKEN, DESKTOP, WEB_TEST_TIMEOUT_S, WebApi, open_page, sign_in
from tests.helpers import KafkaTarget, eventually
from tests.integration.reporter.helpers import Mailbox, make_outcome

pytestmark = pytest.mark.timeout(WEB_TEST_TIMEOUT_S)

# Wednesday 25 Nov 2026, 11:30 in Kolkata (+05:30): the browser's "now" in every test.
NOW = datetime(2026, 11, 25, 6, 0, tzinfo=UTC)
IST = timedelta(hours=5, minutes=30)


def ist(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant given as Kolkata wall time in November 2026."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC) - IST


async def browser_now(page: Page) -> None:
    await page.clock.set_fixed_time(NOW)


@dataclass
class ReportStack:
    """A profile-api and a running report Scheduler on a database of this test alone."""

    api: WebApi
    mailbox: Mailbox


@pytest.fixture
async def report_stack(
    own_database: str, kafka: KafkaTarget, master_key: str
) -> AsyncIterator[ReportStack]:
    # The scheduler looks at every account with reports on; on a database of its own it
    # sees only this test's account.
    from aiosmtpd.controller import Controller
    from profile_api.app import create_app

    mailbox = Mailbox()
    smtp_port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    settings = Settings(
        database_url=own_database,
        **kafka.fields(),
        kafka_partitions=1,
        topic_prefix=f"webrep{uuid.uuid4().hex[:8]}.",
        master_key=master_key,
        admin_token=ADMIN_TOKEN,
        api_host="127.0.0.1",
        smtp_port=smtp_port,
        smtp_from="reports@test.local",
        log_format="console",
    )
    await ensure_topics(settings)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pool = await create_pool(own_database)
    scheduler = Scheduler(settings, pool, ReporterMetrics(CollectorRegistry()))
    task = asyncio.create_task(scheduler.run())
    try:
        async with aiohttp.ClientSession() as session:
            yield ReportStack(WebApi(f"http://127.0.0.1:{port}", session), mailbox)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await pool.close()
        await runner.cleanup()
        controller.stop()


@pytest.fixture
async def berlin_page(web_browser: Browser) -> AsyncIterator[Page]:
    """A desktop page whose browser lives in Europe/Berlin."""
    async for opened in open_page(web_browser, DESKTOP, timezone_id="Europe/Berlin"):
        yield opened


async def open_notifications(page: Page) -> None:
    await page.get_by_role("link", name="Settings").click()
    await expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_focused()


async def test_user_enables_weekly_reports_for_two_recipients_and_one_sent_now_arrives(
    berlin_page: Page, report_stack: ReportStack, web_screenshot_dir: Path
) -> None:
    page, api = berlin_page, report_stack.api
    key = await api.new_account()
    await browser_now(page)
    await sign_in(page, api.url, key)
    await open_notifications(page)

    zone = page.get_by_label("Time zone")
    await expect(zone).to_have_value("Europe/Berlin")  # the browser's own, preselected
    await expect(page.locator("#main")).to_contain_text("Reports are off, so none is scheduled.")

    await page.get_by_label("Email callback reports").check()
    await page.get_by_label("Weekly").check()
    add = page.get_by_label("Add a recipient")
    for address in ("ops@example.com", "temp@example.com"):
        await add.fill(address)
        await page.get_by_role("button", name="Add", exact=True).click()
    await add.fill("not an address")
    await page.get_by_role("button", name="Add", exact=True).click()
    await expect(add).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(".recipients .field-error")).to_have_text(
        "Not an email address: not an address"
    )
    await add.fill("cfo@example.com")
    await add.press("Enter")
    await expect(page.locator(".recipients .field-error")).to_be_hidden()
    await page.get_by_role("button", name="Remove temp@example.com").click()
    await expect(page.locator(".recipient-list .address")).to_have_text(
        ["ops@example.com", "cfo@example.com"]
    )

    # The API's errors land beside their fields.
    await zone.fill("Mars/Olympus")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator(".error-summary")).to_be_focused()
    await expect(zone).to_have_attribute("aria-invalid", "true")
    await expect(page.locator(f"#{await zone.get_attribute('id')}-error")).to_contain_text(
        "unknown IANA time zone 'Mars/Olympus'"
    )

    await zone.fill("Asia/Kolkata")
    await page.get_by_role("button", name="Save").click()
    await expect(page.locator("#status")).to_have_text("Notification settings saved.")
    status, saved = await api.call("GET", "/v1/callback-reports/settings", key)
    assert (status, saved) == (
        200,
        {
            "enabled": True,
            "frequency": "weekly",
            "recipients": ["ops@example.com", "cfo@example.com"],
            "timezone": "Asia/Kolkata",
        },
    )
    # Wednesday 25 Nov in Kolkata: this week's report is due when Monday 30 Nov begins.
    due = page.locator(".next-report time")
    await expect(due).to_have_attribute("datetime", "2026-11-29T18:30:00.000Z")
    await expect(due).to_have_text("Mon 30 Nov 2026, 00:00 Asia/Kolkata")
    await expect(page.locator(".next-report")).to_contain_text(
        "it covers Mon 23 Nov 2026 to Sun 29 Nov 2026."
    )

    await page.get_by_role("button", name="Send a report now").click()
    result = page.locator(".send-result")
    await expect(result).to_contain_text("to ops@example.com, cfo@example.com.", timeout=30_000)
    await expect(result).to_have_attribute("data-state", "sent", timeout=30_000)
    await expect(result).to_contain_text("Sent ")

    def sent_now() -> list[Any]:
        # The scheduler may also send the real last week's report on its first tick;
        # the send-now one is the "Current" report.
        return [
            (m, rcpt)
            for m, (_, rcpt) in zip(
                report_stack.mailbox.messages, report_stack.mailbox.envelopes, strict=True
            )
            if str(m["Subject"]).startswith("Current callback report")
        ]

    async def arrived() -> list[Any]:
        return sent_now()

    [(message, rcpt)] = await eventually(arrived, what="the send-now email")
    assert sorted(rcpt) == ["cfo@example.com", "ops@example.com"]
    assert "Asia/Kolkata" in str(message["Subject"])
    await page.evaluate("document.getElementById('status').textContent = ''")  # the toast
    await page.locator(".settings").screenshot(path=web_screenshot_dir / "notifications.png")


async def test_settings_view_works_with_the_keyboard_alone(
    web_page: Page, web_api: WebApi, web_api_key: str
) -> None:
    page = web_page
    await browser_now(page)
    await sign_in(page, web_api.url, web_api_key)
    # From the list's heading, back up into the top bar and follow "Settings".
    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("button", name="Sign out")).to_be_focused()
    await page.keyboard.press("Shift+Tab")
    await expect(page.get_by_role("link", name="Settings")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.get_by_role("heading", name="Notifications", level=1)).to_be_focused()

    await page.keyboard.press("Tab")
    switch = page.get_by_label("Email callback reports")
    await expect(switch).to_be_focused()
    await page.keyboard.press("Space")
    await expect(switch).to_be_checked()

    await page.keyboard.press("Tab")
    await expect(page.get_by_label("Daily")).to_be_focused()
    await page.keyboard.press("ArrowDown")
    await expect(page.get_by_label("Weekly")).to_be_focused()
    await expect(page.get_by_label("Weekly")).to_be_checked()

    await page.keyboard.press("Tab")
    add = page.get_by_label("Add a recipient")
    await expect(add).to_be_focused()
    await page.keyboard.type("x@@y")
    await page.keyboard.press("Enter")  # Enter adds (here: refuses), it does not save
    await expect(add).to_be_focused()
    await expect(add).to_have_attribute("aria-invalid", "true")
    await page.keyboard.press("Control+A")
    for address in ("ops@example.com", "dev@example.com", "qa@example.com"):
        await page.keyboard.type(address)
        await page.keyboard.press("Enter")
        await expect(add).to_have_value("")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Add", exact=True)).to_be_focused()
    await page.keyboard.press("Tab")
    await page.keyboard.press("Tab")
    remove_dev = page.get_by_role("button", name="Remove dev@example.com")
    await expect(remove_dev).to_be_focused()
    await page.keyboard.press("Enter")
    # The focus moves to the next Remove button, never back to the top of the page.
    await expect(page.get_by_role("button", name="Remove qa@example.com")).to_be_focused()
    await page.keyboard.press("Tab")
    zone = page.get_by_label("Time zone")
    await expect(zone).to_be_focused()
    await page.keyboard.press("Control+A")
    await page.keyboard.type("Asia/Kolkata")
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Save")).to_be_focused()
    await page.keyboard.press("Enter")
    await expect(page.locator("#status")).to_have_text("Notification settings saved.")
    status, saved = await web_api.call("GET", "/v1/callback-reports/settings", web_api_key)
    assert (status, saved) == (
        200,
        {
            "enabled": True,
            "frequency": "weekly",
            "recipients": ["ops@example.com", "qa@example.com"],
            "timezone": "Asia/Kolkata",
        },
    )
    # Everything on the view is reachable: Tab on from Save reaches Send a report now.
    await page.keyboard.press("Tab")
    await expect(page.get_by_role("button", name="Send a report now")).to_be_focused()


async def seed_profile(db_pool: asyncpg.Pool, web_api: WebApi, key: str) -> dict[str, Any]:
    """A profile with final outcomes on fixed days around NOW (Kolkata time)."""
    status, _ = await web_api.call(
        "PUT",
        "/v1/callback-reports/settings",
        key,
        {"enabled": False, "frequency": "daily", "recipients": [], "timezone": "Asia/Kolkata"},
    )
    assert status == 200
    status, profile = await web_api.call(
        "POST",
        "/v1/callback-profiles",
        key,
        {"title": "Order SMS status", "method": "GET", "url": "https://shop.example/h"},
    )
    assert status == 201, profile
    account = await db_pool.fetchval(
        "SELECT account_id FROM callback_profiles WHERE id = $1", uuid.UUID(profile["id"])
    )
    pid = uuid.UUID(profile["id"])
    outcomes = [
        *(make_outcome(account, pid, attempted_at=ist(23, 9, i)) for i in range(3)),  # Mon
        *(make_outcome(account, pid, attempted_at=ist(24, 10, i)) for i in range(6)),  # Tue
        *(
            make_outcome(
                account,
                pid,
                status="failed",
                attempt=4,
                http_status=500,
                error="HTTP 500",
                attempted_at=ist(24, 11, i),  # before the last 24 hours
            )
            for i in range(2)
        ),
        make_outcome(account, pid, attempted_at=ist(25, 9)),  # Wed, today
        make_outcome(
            account,
            pid,
            status="failed",
            attempt=9,
            http_status=503,
            error="endpoint answered 503 Service Unavailable",
            attempted_at=ist(25, 9, 30),
        ),
        make_outcome(account, pid, attempted_at=ist(18, 12)),  # last week: 30 days only
        make_outcome(account, pid, status="retrying", attempted_at=ist(25, 10)),  # not final
    ]
    await write_batch(db_pool, outcomes)
    return dict(profile)


async def bars(page: Page) -> list[tuple[str, str, str]]:
    groups = page.locator("svg.chart g.bar-group")
    return [
        (
            str(await g.get_attribute("data-start")),
            str(await g.get_attribute("data-delivered")),
            str(await g.get_attribute("data-failed")),
        )
        for g in await groups.all()
    ]


async def test_profile_page_shows_the_right_bars_totals_and_last_failure(
    web_page: Page, web_api: WebApi, web_api_key: str, db_pool: Any, web_screenshot_dir: Path
) -> None:
    page = web_page
    profile = await seed_profile(db_pool, web_api, web_api_key)
    await browser_now(page)
    await sign_in(page, web_api.url, web_api_key)

    # The list: delivered and failed in the last 24 hours, beside a small trend.
    trend = page.locator("table.profiles td[data-label='Last 24 h']").first
    await expect(trend).to_contain_text("✓ 1 delivered")
    await expect(trend).to_contain_text("✗ 1 failed")
    await expect(trend.locator("svg.sparkline rect.bar-failed")).to_have_count(1)
    await page.locator("table.profiles tbody tr").first.screenshot(
        path=web_screenshot_dir / "list-trend.png"
    )

    await page.get_by_role("link", name="Order SMS status", exact=True).click()
    health = page.locator("section.health")
    await expect(health.locator("svg.chart g.bar-group")).to_have_count(7)
    assert await bars(page) == [
        ("2026-11-19T00:00:00+05:30", "0", "0"),
        ("2026-11-20T00:00:00+05:30", "0", "0"),
        ("2026-11-21T00:00:00+05:30", "0", "0"),
        ("2026-11-22T00:00:00+05:30", "0", "0"),
        ("2026-11-23T00:00:00+05:30", "3", "0"),
        ("2026-11-24T00:00:00+05:30", "6", "2"),
        ("2026-11-25T00:00:00+05:30", "1", "1"),
    ]
    # Bar heights follow the counts: Tuesday's delivered bar is twice Monday's.
    delivered = health.locator("rect.bar-delivered")
    monday = float(await delivered.nth(4).get_attribute("height") or 0)
    tuesday = float(await delivered.nth(5).get_attribute("height") or 0)
    assert monday > 0
    assert tuesday == pytest.approx(2 * monday)
    await expect(health.locator(".stats .delivered")).to_have_text("10")
    await expect(health.locator(".stats .failed")).to_have_text("3")
    await expect(health.locator(".stats .rate")).to_have_text("76.9%")
    # Without colour: the numbers are written above the bars and named in the legend.
    await expect(health.locator("svg.chart text.value")).to_have_count(5)
    await expect(health.locator(".legend")).to_contain_text("Failed (hatched)")
    await expect(health.locator(".last-failure")).to_contain_text(
        "HTTP 503: endpoint answered 503 Service Unavailable (9 attempts, sms.send)"
    )

    # The table fallback is there for screen readers, and visible on request.
    table = health.get_by_role("table", name="Delivered and failed callbacks per day")
    await expect(table.locator("tbody tr")).to_have_count(7)
    tuesday_row = table.locator("tbody tr").nth(5)
    await expect(tuesday_row.locator("th")).to_have_text("Tue 24 Nov")
    await expect(tuesday_row.locator("td")).to_have_text(["6", "2"])
    await expect(table).to_have_class("chart-table visually-hidden")
    await health.get_by_role("button", name="Show as a table").click()
    await expect(table).to_have_class("chart-table")
    await health.get_by_role("button", name="Hide the table").click()
    await health.screenshot(path=web_screenshot_dir / "health.png")

    await health.get_by_role("button", name="Last 24 hours").click()
    await expect(health.locator("svg.chart g.bar-group")).to_have_count(24)
    hours = await bars(page)
    assert hours[0][0] == "2026-11-24T12:00:00+05:30"
    assert hours[-1][0] == "2026-11-25T11:00:00+05:30"
    assert [b for b in hours if b[1:] != ("0", "0")] == [("2026-11-25T09:00:00+05:30", "1", "1")]
    await expect(health.locator(".stats .rate")).to_have_text("50.0%")

    await health.get_by_role("button", name="Last 30 days").click()
    await expect(health.locator("svg.chart g.bar-group")).to_have_count(30)
    await expect(health.locator(".stats .delivered")).to_have_text("11")
    assert profile["id"]
