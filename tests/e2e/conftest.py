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
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from callbacks.kafka import ensure_topics
from callbacks.settings import Settings
from callbacks_dev.devstack.processes import free_port
from playwright.async_api import Browser, Page, async_playwright

from tests.e2e.helpers import ADMIN_TOKEN, CHROMIUM, DESKTOP, PHONE, Sink, WebApi, open_page
from tests.helpers import KafkaTarget

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Screenshots for the README land here when set (docs/screenshots); otherwise in a
# temporary folder, so the screenshot code runs on every test run.
SCREENSHOT_DIR_ENV = "CALLBACKS_SCREENSHOT_DIR"


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
