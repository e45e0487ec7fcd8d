"""Browser fixtures: Debian's Chromium driven by Playwright against the real profile-api.

The profile-api runs in this process (``create_app`` on a free port, with the session's
real PostgreSQL and broker); Chromium is the system package, installed here when it is
missing (CI runs as root on a fresh Debian machine). Playwright's own browser download
is never used. Every page fails its test on a console error or an uncaught exception,
which also catches Content-Security-Policy violations.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from playwright.async_api import Browser, Page, async_playwright

from tests.helpers import KafkaTarget

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_TOKEN = "web-admin-token"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Screenshots for the README land here when set (docs/screenshots); otherwise in a
# temporary folder, so the screenshot code runs on every test run.
SCREENSHOT_DIR_ENV = "CALLBACKS_SCREENSHOT_DIR"
# pytest-timeout counts session fixtures in the first test that needs them; installing
# Chromium with apt on a fresh machine takes minutes, so only then the limit is longer.
WEB_TEST_TIMEOUT_S = 120 if Path(CHROMIUM).exists() else 900


@pytest.fixture(scope="session")
def web_chromium() -> str:
    """The system Chromium; installed with apt once per session when it is missing."""
    if not Path(CHROMIUM).exists():
        apt = shutil.which("apt-get")
        assert apt, f"{CHROMIUM} is missing and apt-get is not available to install it"
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=True, env=env, timeout=600)
        subprocess.run([apt, "install", "-y", "-qq", "chromium"], check=True, env=env, timeout=900)
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is still missing after apt-get install"
    return CHROMIUM


@pytest.fixture(scope="session")
async def web_browser(web_chromium: str) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=web_chromium, args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            await launched.close()


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


@pytest.fixture(scope="session")
async def web_api(
    migrated_database: str, kafka: KafkaTarget, master_key: str
) -> AsyncIterator[WebApi]:
    """One profile-api for the browser tests (each test makes its own account)."""
    from profile_api.app import create_app

    settings = Settings(
        database_url=migrated_database,
        **kafka.fields(),
        kafka_partitions=1,
        topic_prefix=f"web{uuid.uuid4().hex[:8]}.",
        master_key=master_key,
        admin_token=ADMIN_TOKEN,
        allow_private_targets=True,
        allow_plain_http=True,  # the sinks are plain http on loopback
        retry_schedule="200ms",
        delivery_timeout="2s",
        api_host="127.0.0.1",
        log_format="console",
    )
    await ensure_topics(settings)
    runner = web.AppRunner(create_app(settings), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            yield WebApi(f"http://127.0.0.1:{port}", session)
    finally:
        await runner.cleanup()


@pytest.fixture
async def web_api_key(web_api: WebApi) -> str:
    return await web_api.new_account()


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


@pytest.fixture
async def web_page(web_browser: Browser) -> AsyncIterator[Page]:
    """A desktop-width page (1280 px) in a fresh browser context."""
    async for opened in open_page(web_browser, DESKTOP):
        yield opened


@pytest.fixture
async def web_phone_page(web_browser: Browser) -> AsyncIterator[Page]:
    """A phone-width page (390 px) in a fresh browser context."""
    async for opened in open_page(web_browser, PHONE):
        yield opened


@pytest.fixture(scope="session")
def web_screenshot_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    given = os.environ.get(SCREENSHOT_DIR_ENV)
    folder = Path(given) if given else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Sink:
    """A local HTTP endpoint that records what it receives and answers 200."""

    url: str
    received: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture
async def web_sink() -> AsyncIterator[Sink]:
    port = free_port()
    recorded = Sink(f"http://127.0.0.1:{port}")

    async def receive(request: web.Request) -> web.Response:
        recorded.received.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": dict(request.headers),
                "body": await request.text(),
            }
        )
        return web.json_response({"ok": True, "received": len(recorded.received)})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield recorded
    finally:
        await runner.cleanup()
