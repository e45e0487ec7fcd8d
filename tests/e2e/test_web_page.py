"""The web page's shell: how it is served, signing in and out, the phone layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from tests.e2e.helpers import WEB_TEST_TIMEOUT_S, WebApi, sign_in

pytestmark = pytest.mark.timeout(WEB_TEST_TIMEOUT_S)


async def test_page_is_served_with_a_strict_policy_and_no_key(web_api: WebApi) -> None:
    async with web_api.session.get(f"{web_api.url}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = await response.text()
        assert '<script type="module" src="/static/app.js">' in html
    for name, kind in (("app.js", "text/javascript"), ("styles.css", "text/css")):
        async with web_api.session.get(f"{web_api.url}/static/{name}") as response:
            assert response.status == 200
            assert response.content_type == kind
            assert "Content-Security-Policy" in response.headers
    for missing in ("/static/nope.js", "/static/../app.py", "/static/%2e%2e/app.py"):
        async with web_api.session.get(f"{web_api.url}{missing}") as response:
            assert response.status == 404, missing


async def test_sign_in_refuses_a_wrong_key_then_keeps_the_right_one_for_the_tab(
    web_page: Page, web_api: WebApi, web_api_key: str
) -> None:
    await web_page.goto(web_api.url)
    await web_page.get_by_label("API key").fill("cbk_not-a-key")
    await web_page.get_by_role("button", name="Sign in").click()
    await expect(web_page.get_by_role("alert")).to_have_text("That API key was not accepted.")

    await web_page.get_by_label("API key").fill(web_api_key)
    await web_page.get_by_role("button", name="Sign in").click()
    await expect(web_page.get_by_role("heading", name="Callback Profiles", level=1)).to_be_visible()
    assert await web_page.evaluate("sessionStorage.getItem('callbacks.apiKey')") == web_api_key

    await web_page.reload()  # the key survives a reload of the tab
    await expect(web_page.get_by_role("link", name="Add New")).to_be_visible()

    await web_page.get_by_role("button", name="Sign out").click()
    await expect(web_page.get_by_label("API key")).to_be_visible()
    assert await web_page.evaluate("sessionStorage.getItem('callbacks.apiKey')") is None


async def test_phone_width_stacks_the_list_and_the_form_without_sideways_scroll(
    web_phone_page: Page, web_api: WebApi, web_api_key: str, web_screenshot_dir: Path
) -> None:
    for n in range(2):
        status, _ = await web_api.call(
            "POST",
            "/v1/callback-profiles",
            web_api_key,
            {"title": f"Phone profile {n}", "method": "GET", "url": "https://example.com/p"},
        )
        assert status == 201
    page = web_phone_page
    await sign_in(page, web_api.url, web_api_key)
    await expect(page.get_by_role("link", name="Phone profile 1", exact=True)).to_be_visible()
    # Rows are cards: the header row is hidden and each cell carries its own label.
    await expect(page.locator("table.profiles thead")).to_be_hidden()
    overflow = "document.scrollingElement.scrollWidth - window.innerWidth"
    assert await page.evaluate(overflow) <= 0
    await page.screenshot(path=web_screenshot_dir / "phone-list.png")

    await page.get_by_role("link", name="Add New").click()
    await expect(page.get_by_role("heading", name="Add callback profile")).to_be_visible()
    assert await page.evaluate(overflow) <= 0
    form_box = await page.locator("form.profile-form").bounding_box()
    picker_box = await page.locator("aside.picker").bounding_box()
    assert form_box
    assert picker_box
    assert picker_box["y"] >= form_box["y"] + form_box["height"] - 1  # stacked, not beside


async def test_keyboard_alone_signs_in_and_reaches_the_form_with_visible_focus(
    web_page: Page, web_api: WebApi, web_api_key: str
) -> None:
    await web_page.goto(web_api.url)
    await expect(web_page.get_by_label("API key")).to_be_focused()
    await web_page.keyboard.type(web_api_key)
    await web_page.keyboard.press("Enter")
    heading = web_page.get_by_role("heading", name="Callback Profiles", level=1)
    await expect(heading).to_be_focused()  # each view moves focus to its heading

    await web_page.keyboard.press("Tab")
    add_new = web_page.get_by_role("link", name="Add New")
    await expect(add_new).to_be_focused()
    outline = "el => getComputedStyle(el).outlineStyle"
    assert await add_new.evaluate(outline) == "solid"  # focus is visible
    await web_page.keyboard.press("Enter")
    await expect(web_page.get_by_role("heading", name="Add callback profile")).to_be_focused()
    await web_page.keyboard.press("Tab")
    await expect(web_page.get_by_label("Title", exact=True)).to_be_focused()


async def test_a_key_the_api_stops_accepting_signs_the_user_out(
    web_page: Page, web_api: WebApi, web_api_key: str
) -> None:
    await sign_in(web_page, web_api.url, web_api_key)
    await web_page.route(
        "**/v1/callback-profiles?*",
        lambda route: route.fulfill(
            status=401,
            content_type="application/problem+json",
            body='{"type": "about:blank", "title": "Unauthorized", "status": 401, '
            '"detail": "unknown or revoked api-key"}',
        ),
    )
    await web_page.get_by_role("button", name="Search").click()
    await expect(web_page.get_by_role("alert")).to_have_text(
        "Your API key is no longer accepted. Please sign in again."
    )
    await expect(web_page.get_by_label("API key")).to_be_focused()
    assert await web_page.evaluate("sessionStorage.getItem('callbacks.apiKey')") is None
