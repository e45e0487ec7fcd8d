"""Helpers of the browser tests: the system Chromium's path, viewports, the time limit, an
admin client of the running profile-api, a page that fails its test on a browser error,
the record a loopback sink keeps, and the steps several page tests take (sign in, fill a
profile, create one through the API, write a delivery-log row)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, Locator, Page, expect

CHROMIUM = "/usr/bin/chromium"


ADMIN_TOKEN = "web-admin-token"


DESKTOP = {"width": 1280, "height": 900}


PHONE = {"width": 390, "height": 844}


# pytest-timeout counts session fixtures in the first test that needs them; installing
# Chromium with apt on a fresh machine takes minutes, so only then the limit is longer.
WEB_TEST_TIMEOUT_S = 120 if Path(CHROMIUM).exists() else 900


@dataclass
class WebApi:
    """The running profile-api: its URL and an admin client for setting up data."""

    url: str
    session: aiohttp.ClientSession

    async def new_account(self) -> str:
        """A fresh account; returns its API key."""
        async with self.session.post(
            f"{self.url}/v1/accounts",
            json={"name": f"web-{uuid.uuid4().hex[:8]}"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        ) as response:
            assert response.status == 201, await response.text()
            body = await response.json()
            return str(body["api_key"])

    async def call(
        self, method: str, path: str, key: str, body: dict[str, Any] | None = None
    ) -> tuple[int, Any]:
        async with self.session.request(
            method, f"{self.url}{path}", json=body, headers={"api-key": key}
        ) as response:
            data = await response.json() if response.status != 204 else None
            return response.status, data


@dataclass
class PageErrors:
    messages: list[str] = field(default_factory=list)


async def open_page(
    browser: Browser, viewport: dict[str, int], **options: Any
) -> AsyncIterator[Page]:
    """A page in a fresh context (``options``: more ``new_context`` options, such as
    ``timezone_id``) that fails its test on any browser error."""
    context = await browser.new_context(viewport=viewport, **options)  # type: ignore[arg-type]
    page = await context.new_page()
    page.set_default_timeout(5_000)
    errors = PageErrors()

    def on_console(message: Any) -> None:
        # The API's deliberate 4xx answers (validation, wrong key) are logged by
        # Chromium as failed resources; they are the page working, not a fault.
        text = message.text
        if message.type == "error" and "Failed to load resource" not in text:
            errors.messages.append(text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.messages.append(f"uncaught: {exc}"))
    try:
        yield page
    finally:
        await context.close()
    assert not errors.messages, f"browser errors: {errors.messages}"


@dataclass
class Sink:
    """A local HTTP endpoint that records what it receives and answers 200."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


# -- steps several page tests take ---------------------------------------------------


async def sign_in(page: Page, url: str, key: str) -> None:
    await page.goto(url)
    await page.get_by_label("API key").fill(key)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Callback Profiles", level=1)).to_be_visible()


async def create(web_api: WebApi, key: str, **fields: Any) -> dict[str, Any]:
    status, body = await web_api.call("POST", "/v1/callback-profiles", key, fields)
    assert status == 201, body
    return dict(body)


async def insert_delivery(
    db_pool: Any,
    profile: dict[str, Any],
    delivery_id: str,
    *,
    at: datetime,
    attempt: int = 1,
    status: str = "delivered",
    http_status: int = 200,
    source_topic: str | None = None,
    source_offset: int = 0,
) -> None:
    """One final callback of ``profile`` in the delivery log, as the reporter writes it
    from outcome records (event ``sms.send``, event id ``evt-<delivery_id>``)."""
    await db_pool.execute(
        """INSERT INTO deliveries (delivery_id, account_id, profile_id, event_id, event,
               channel, attempt, attempt_id, status, final, http_status, error, latency_ms,
               first_attempted_at, last_attempted_at, source_topic, source_partition,
               source_offset)
           SELECT $1, account_id, id, $2, 'sms.send', 'sms', $3, $4, $5, true, $6, NULL, 12.5,
               $7, $7, $8, 0, $9
           FROM callback_profiles WHERE id = $10""",
        delivery_id,
        f"evt-{delivery_id}",
        attempt,
        f"{delivery_id}-a{attempt}",
        status,
        http_status,
        at,
        source_topic,
        source_offset,
        uuid.UUID(profile["id"]),
    )


async def field_error(page: Page, label: str) -> Locator:
    """The error slot beside the input labelled ``label`` (its aria-describedby)."""
    control = page.get_by_label(label, exact=True)
    await expect(control).to_have_attribute("aria-invalid", "true")
    described = await control.get_attribute("aria-describedby") or ""
    slot = next(i for i in described.split() if i.endswith("-error"))
    return page.locator(f"[id='{slot}']")


async def fill_sms_profile(page: Page, sink: Sink) -> None:
    await page.get_by_role("link", name="Add New").click()
    await expect(page.get_by_role("heading", name="Add callback profile")).to_be_visible()
    await page.get_by_label("Title", exact=True).fill("Order SMS status")
    await page.get_by_label("Select channel API").select_option("sms")
    await page.get_by_role("checkbox", name=re.compile(r"^sms\.send")).check()
    await expect(page.get_by_label("HTTP method")).to_have_value("POST")
    await page.get_by_label("URL endpoint").fill(f"{sink.url}/hooks/sms?src=web")
    await page.get_by_role("button", name="Add header").click()
    await page.get_by_label("Header 1 name").fill("X-Id")
    await page.get_by_label("Header 1 value").fill("{{message_id}}")
