"""Helpers of the browser tests: the system Chromium's path, viewports, the time limit, an
admin client of the running profile-api, a page that fails its test on a browser error,
and the record a loopback sink keeps."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from playwright.async_api import Browser, Page

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
