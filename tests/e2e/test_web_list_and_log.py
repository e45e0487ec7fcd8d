"""The web page's profile list, delivery log and safe display of user data, in headless
Chromium (the form itself is in ``test_web_profiles``)."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import FloatRect, Page, expect

from tests.e2e.helpers import WEB_TEST_TIMEOUT_S, WebApi, create, insert_delivery, sign_in

# The upper part of a desktop page: enough for the README, small as a file.
TOP: FloatRect = {"x": 0, "y": 0, "width": 1280, "height": 640}

pytestmark = pytest.mark.timeout(WEB_TEST_TIMEOUT_S)


async def test_list_filters_by_title_method_and_created_date_and_pages(
    web_page: Page, web_api: WebApi, web_api_key: str, web_screenshot_dir: Path
) -> None:
    for n in range(18):
        await create(
            web_api, web_api_key, title=f"Bulk {n:02}", method="GET", url="https://bulk.example/h"
        )
    await create(
        web_api,
        web_api_key,
        title="Email bounces",
        channel="email",
        events=["email.send"],
        url="https://mail.example.net/cb",
        body_type="json",
        body='{"to": "{{to}}", "status": "{{status}}"}',
    )
    await create(
        web_api,
        web_api_key,
        title="WhatsApp incoming",
        channel="whatsapp",
        events=["whatsapp.incoming"],
        method="GET",
        url="https://wa.example.org/in",
        query_params={"from": "{{from}}"},
    )
    await create(
        web_api,
        web_api_key,
        title="Chatbot booking",
        channel="chatbot",
        events=["chatbot.action"],
        method="PUT",
        url="https://bot.example.com/booking",
        body_type="json",
        body='{"session": "{{session_id}}"}',
    )
    newest = await create(
        web_api,
        web_api_key,
        title="Order SMS status",
        channel="sms",
        events=["sms.send"],
        url="https://shop.example.com/hooks/sms",
        body_type="json",
        body='{"id": "{{message_id}}"}',
    )

    await web_page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    await sign_in(web_page, web_api.url, web_api_key)
    rows = web_page.locator("table.profiles tbody tr")
    await expect(rows).to_have_count(20)
    first = rows.first
    await expect(first).to_contain_text("Order SMS status")
    await expect(first).to_contain_text("SMS")
    await expect(first).to_contain_text("shop.example.com")
    await expect(first).to_contain_text(newest["id"])
    await web_page.screenshot(path=web_screenshot_dir / "list.png", clip=TOP)

    await first.get_by_role("button", name="Copy profile ID").click()
    await expect(web_page.locator("#status")).to_have_text("Copied profile ID.")
    assert await web_page.evaluate("navigator.clipboard.readText()") == newest["id"]

    # Pagination: 22 profiles are 20 + 2; Previous goes back to the first web_page.
    await web_page.get_by_role("button", name="Next").click()
    await expect(rows).to_have_count(2)
    await expect(web_page.get_by_role("button", name="Next")).to_be_disabled()
    await web_page.get_by_role("button", name="Previous").click()
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text("Order SMS status")

    search = web_page.get_by_role("button", name="Search")
    await web_page.get_by_label("Title", exact=True).fill("whatsapp")
    await search.click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("WhatsApp incoming")

    await web_page.get_by_label("Title", exact=True).fill("")
    await web_page.get_by_label("HTTP method").select_option("PUT")
    await search.click()
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("Chatbot booking")

    await web_page.get_by_label("HTTP method").select_option("")
    tomorrow = (date.today() + timedelta(days=1)).isoformat()
    await web_page.get_by_label("Created from").fill(tomorrow)
    await search.click()
    await expect(
        web_page.locator("#main").get_by_text("No callback profiles match these filters.")
    ).to_be_visible()

    today = date.today().isoformat()
    await web_page.get_by_label("Created from").fill(today)
    await web_page.get_by_label("Created to").fill(today)
    await web_page.get_by_label("HTTP method").select_option("POST")
    await search.click()
    await expect(rows).to_have_count(2)  # Order SMS status, Email bounces
    assert "method=POST" in web_page.url  # filters live in the address, so Back restores them


async def test_a_disabled_profile_says_why(
    web_page: Page, web_api: WebApi, web_api_key: str, db_pool: Any
) -> None:
    profile = await create(
        web_api, web_api_key, title="Gone endpoint", url="https://gone.example/h", method="GET"
    )
    # Only the dispatcher disables profiles (on a 410); set the state it leaves directly.
    await db_pool.execute(
        """UPDATE callback_profiles SET enabled = false,
                  document = document || jsonb_build_object('enabled', false,
                      'disabled_reason', 'endpoint_gone', 'disabled_at', now())
           WHERE id = $1""",
        profile["id"],
    )
    await sign_in(web_page, web_api.url, web_api_key)
    await expect(web_page.locator("table.profiles")).to_contain_text("Disabled (410 Gone)")
    await web_page.get_by_role("link", name="Gone endpoint", exact=True).click()
    await expect(web_page.get_by_role("note")).to_contain_text("410 Gone")


async def test_delivery_log_shows_callbacks_attempts_and_redelivers(
    web_page: Page, web_api: WebApi, web_api_key: str, db_pool: Any, web_screenshot_dir: Path
) -> None:
    profile = await create(
        web_api, web_api_key, title="Logged", url="https://log.example/h", method="GET"
    )
    # The reporter writes these tables from outcome records; write two callbacks directly.
    account = await db_pool.fetchval(
        "SELECT account_id FROM callback_profiles WHERE id = $1", profile["id"]
    )
    suffix = profile["id"][:8]
    failed, delivered = f"dlv-failed-{suffix}", f"dlv-ok-{suffix}"
    now = datetime.now(UTC)
    for delivery_id, attempt, status, http, topic in (
        (failed, 2, "failed", 500, "sms.send"),
        (delivered, 1, "delivered", 200, None),
    ):
        await insert_delivery(
            db_pool,
            profile,
            delivery_id,
            at=now,
            attempt=attempt,
            status=status,
            http_status=http,
            source_topic=topic,
        )
    for attempt, status, http in ((1, "retrying", 503), (2, "failed", 500)):
        await db_pool.execute(
            """INSERT INTO delivery_attempts (attempt_id, delivery_id, event_id, account_id,
                   profile_id, channel, event, attempt, status, final, http_status, error,
                   latency_ms, attempted_at)
               VALUES ($1, $2, $3, $4, $5, 'sms', 'sms.send', $6, $7, $8, $9, $10, 10, $11)""",
            f"{failed}-a{attempt}",
            failed,
            f"evt-{failed}",
            account,
            uuid.UUID(profile["id"]),
            attempt,
            status,
            attempt == 2,
            http,
            f"HTTP {http}",
            now,
        )

    await sign_in(web_page, web_api.url, web_api_key)
    await web_page.get_by_role("link", name="Delivery log of Logged").click()
    await expect(web_page.get_by_role("heading", name="Delivery log")).to_be_visible()
    rows = web_page.locator("table.deliveries > tbody > tr:not(.detail)")
    await expect(rows).to_have_count(2)
    failed_row = rows.filter(has_text=failed)
    await expect(failed_row).to_contain_text("failed")
    await expect(failed_row.locator("td[data-label='Attempts']")).to_have_text("2")
    await expect(failed_row.locator("td[data-label='Last HTTP']")).to_have_text("500")

    await web_page.get_by_role("button", name=f"Attempts of {failed}").click()
    attempts = web_page.locator("table.attempts tbody tr")
    await expect(attempts).to_have_count(2)
    await expect(attempts.first).to_contain_text("503")
    await web_page.locator("main").screenshot(path=web_screenshot_dir / "delivery-log.png")

    await expect(web_page.get_by_role("button", name=f"Redeliver {delivered}")).to_be_disabled()
    await web_page.get_by_role("button", name=f"Redeliver {failed}").click()
    await expect(web_page.locator("#status")).to_have_text(f"Redelivery of {failed} requested.")


async def test_delivery_log_pages_with_previous_and_next(
    web_page: Page, web_api: WebApi, web_api_key: str, db_pool: Any
) -> None:
    profile = await create(
        web_api, web_api_key, title="Paged", url="https://paged.example/h", method="GET"
    )
    suffix = profile["id"][:8]
    now = datetime.now(UTC)
    for n in range(22):  # 20 on the first page, 2 on the second; dlv-…-00 is the newest
        await insert_delivery(
            db_pool, profile, f"dlv-{suffix}-{n:02}", at=now - timedelta(seconds=n)
        )

    await sign_in(web_page, web_api.url, web_api_key)
    await web_page.get_by_role("link", name="Delivery log of Paged").click()
    rows = web_page.locator("table.deliveries > tbody > tr:not(.detail)")
    pager = web_page.get_by_role("navigation", name="Pages")
    previous = pager.get_by_role("button", name="Previous")
    following = pager.get_by_role("button", name="Next")
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text(f"dlv-{suffix}-00")
    await expect(pager).to_contain_text("Page 1")
    await expect(previous).to_be_disabled()

    await following.click()
    await expect(rows).to_have_count(2)
    await expect(rows.last).to_contain_text(f"dlv-{suffix}-21")
    await expect(pager).to_contain_text("Page 2")
    await expect(following).to_be_disabled()

    await previous.click()
    await expect(rows).to_have_count(20)
    await expect(rows.first).to_contain_text(f"dlv-{suffix}-00")
    await expect(pager).to_contain_text("Page 1")
    await expect(previous).to_be_disabled()


async def test_delivery_log_says_when_the_api_has_no_delivery_log(
    web_page: Page, web_api: WebApi, web_api_key: str
) -> None:
    profile = await create(
        web_api, web_api_key, title="No log", url="https://log.example/h", method="GET"
    )
    problem = {"type": "about:blank", "title": "Not Found", "status": 404, "detail": "no route"}
    await web_page.route(
        re.compile(r"/v1/deliveries\?"),
        lambda route: route.fulfill(
            status=404, content_type="application/problem+json", body=json.dumps(problem)
        ),
    )
    await sign_in(web_page, web_api.url, web_api_key)
    await web_page.goto(f"{web_api.url}/#/profiles/{profile['id']}/deliveries")
    await expect(
        web_page.locator("#main").get_by_text("Delivery log not available.")
    ).to_be_visible()


async def test_user_data_is_shown_as_text_never_as_markup(
    web_page: Page, web_api: WebApi, web_api_key: str
) -> None:
    title = '<img src=x onerror="window.pwned=1"><b>bold</b> & "quoted"'
    await create(web_api, web_api_key, title=title, url="https://x.example/h", method="GET")
    await sign_in(web_page, web_api.url, web_api_key)
    link = web_page.locator("table.profiles a.row-title")
    await expect(link).to_have_text(title)
    assert await web_page.locator("table.profiles img, table.profiles b").count() == 0
    await link.click()
    await expect(web_page.get_by_role("heading", name=f"Edit: {title}")).to_be_visible()
    assert await web_page.evaluate("window.pwned") is None
