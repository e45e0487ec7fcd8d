"""Filters on the profile form and Recover on the delivery log, in headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.e2e.helpers import (
    DESKTOP,
    WEB_TEST_TIMEOUT_S,
    Sink,
    WebApi,
    create,
    field_error,
    fill_sms_profile,
    insert_delivery,
    open_page,
    sign_in,
)

pytestmark = pytest.mark.timeout(WEB_TEST_TIMEOUT_S)


@pytest.fixture
async def utc_page(web_browser: Browser) -> AsyncIterator[Page]:
    """A desktop page whose clock reads UTC, so typed date-times mean what they say."""
    async for opened in open_page(web_browser, DESKTOP, timezone_id="UTC"):
        yield opened


async def test_filters_are_edited_on_the_form_with_errors_beside_their_row(
    web_page: Page, web_api: WebApi, web_api_key: str, web_sink: Sink
) -> None:
    await sign_in(web_page, web_api.url, web_api_key)
    await fill_sms_profile(web_page, web_sink)
    await web_page.get_by_label("Body", exact=True).fill('{"status": "{{status}}"}')
    await web_page.get_by_role("button", name="Add filter").click()
    variable = web_page.get_by_label("Filter 1 variable")
    await expect(variable.locator("option", has_text="dlr_status")).to_have_count(1)
    await variable.select_option("status")
    await web_page.get_by_label("Filter 1 condition").select_option("in")
    await web_page.get_by_label("Filter 1 values").fill("failed, undelivered")
    await web_page.get_by_role("button", name="Add filter").click()
    await web_page.get_by_label("Filter 2 variable").select_option("error_code")
    await web_page.get_by_label("Filter 2 condition").select_option("not_in")
    await web_page.get_by_role("button", name="Save").click()

    # An empty list is refused by the API; the message sits beside that row.
    error = await field_error(web_page, "Filter 2 values")
    await expect(error).to_contain_text("at least one value")
    await expect(web_page.locator(".error-summary")).to_contain_text("filters.1.not_in")

    await web_page.get_by_label("Filter 2 condition").select_option("exists")
    await expect(web_page.get_by_label("Filter 2 values")).to_be_hidden()
    await web_page.get_by_role("button", name="Save").click()
    await expect(web_page.get_by_role("heading", name="Edit: Order SMS status")).to_be_visible()
    _, listing = await web_api.call("GET", "/v1/callback-profiles", web_api_key)
    [saved] = listing["items"]
    assert saved["filters"] == [
        {"variable": "status", "in": ["failed", "undelivered"]},
        {"variable": "error_code", "exists": True},
    ]

    # The edit page shows them; removing one saves the rest.
    await expect(web_page.get_by_label("Filter 1 values")).to_have_value("failed, undelivered")
    await expect(web_page.get_by_label("Filter 2 condition")).to_have_value("exists")
    await web_page.get_by_role("button", name="Remove filter 1").click()
    await expect(web_page.get_by_label("Filter 1 variable")).to_have_value("error_code")
    await web_page.get_by_role("button", name="Save").click()
    await expect(web_page.locator("#main").get_by_text("Callback profile saved.")).to_be_visible()
    _, stored = await web_api.call("GET", f"/v1/callback-profiles/{saved['id']}", web_api_key)
    assert stored["filters"] == [{"variable": "error_code", "exists": True}]


async def test_recover_redelivers_a_range_and_shows_its_progress(
    utc_page: Page, web_api: WebApi, web_api_key: str, db_pool: Any
) -> None:
    profile = await create(
        web_api, web_api_key, title="Recoverable", url="https://rec.example/h", method="GET"
    )
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    for n, status in enumerate(("failed", "failed", "delivered")):
        await insert_delivery(
            db_pool,
            profile,
            f"rec-{profile['id'][:8]}-{n}",
            at=start + timedelta(minutes=10 + n),
            attempt=3,
            status=status,
            http_status=500,
            source_topic="sms.send",
            source_offset=n,
        )

    def local(moment: datetime) -> str:
        return moment.strftime("%Y-%m-%dT%H:%M")

    await sign_in(utc_page, web_api.url, web_api_key)
    await utc_page.get_by_role("link", name="Delivery log of Recoverable").click()
    await expect(utc_page.get_by_role("heading", name="Recover")).to_be_visible()
    await utc_page.get_by_label("Recover from").fill(local(start + timedelta(hours=1)))
    await utc_page.get_by_label("Recover until").fill(local(start))
    await utc_page.get_by_role("button", name="Recover", exact=True).click()
    await expect(await field_error(utc_page, "Recover until")).to_contain_text("later than since")

    await utc_page.get_by_label("Recover from").fill(local(start))
    await utc_page.get_by_label("Recover until").fill(local(start + timedelta(hours=1)))
    await utc_page.get_by_label("Callbacks to recover").select_option("failed")
    await utc_page.get_by_role("button", name="Recover", exact=True).click()
    progress = utc_page.locator(".recovery-progress")
    await expect(progress).to_have_text(
        "Recovery done: 2 of 2 callbacks sent to delivery again.", timeout=15_000
    )
