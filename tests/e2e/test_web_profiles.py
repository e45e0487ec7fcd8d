"""A person managing callback profiles through the web page, in headless Chromium."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from callbacks_dev.devstack.processes import free_port
from playwright.async_api import FloatRect, Page, expect

from tests.e2e.helpers import (
    WEB_TEST_TIMEOUT_S,
    Sink,
    WebApi,
    field_error,
    fill_sms_profile,
    sign_in,
)

# The upper part of a desktop page: enough for the README, small as a file.
TOP: FloatRect = {"x": 0, "y": 0, "width": 1280, "height": 640}

pytestmark = pytest.mark.timeout(WEB_TEST_TIMEOUT_S)


async def test_create_profile_through_the_form_with_errors_beside_their_fields(
    web_page: Page, web_api: WebApi, web_api_key: str, web_sink: Sink, web_screenshot_dir: Path
) -> None:
    await sign_in(web_page, web_api.url, web_api_key)
    await fill_sms_profile(web_page, web_sink)
    await web_page.screenshot(path=web_screenshot_dir / "form.png", clip=TOP)
    body = web_page.get_by_label("Body", exact=True)
    save = web_page.get_by_role("button", name="Save")

    # A body that is not JSON once rendered: the error sits beside the body.
    await body.fill('{"id": "{{message_id}}", "status": }')
    await save.click()
    await expect(await field_error(web_page, "Body")).to_contain_text("not valid JSON")
    await expect(web_page.locator(".error-summary")).to_contain_text("body:")
    await expect(web_page.locator(".error-summary")).to_be_focused()
    await web_page.locator("fieldset", has=body).screenshot(
        path=web_screenshot_dir / "validation-error.png"
    )

    # An unknown variable: the message lists the valid ones.
    await body.fill('{"id": "{{message_id}}", "status": "{{nope}}"}')
    await save.click()
    error = await field_error(web_page, "Body")
    await expect(error).to_contain_text("unknown variable 'nope'")
    await expect(error).to_contain_text("status")  # the valid ones are listed

    # The picker inserts {{status}} at the cursor of the body.
    await body.fill('{"id": "{{message_id}}", "status": ""}')
    await body.evaluate("el => { const at = el.value.length - 2; el.setSelectionRange(at, at); }")
    await web_page.get_by_label("Find variable").fill("status")
    await web_page.get_by_role("button", name=re.compile(r"^Insert \{\{status\}\}")).click()
    await expect(body).to_have_value('{"id": "{{message_id}}", "status": "{{status}}"}')
    await expect(body).to_be_focused()

    await save.click()
    await expect(web_page.get_by_role("heading", name="Edit: Order SMS status")).to_be_visible()
    await expect(web_page.locator("#main").get_by_text("Callback profile created.")).to_be_visible()
    await expect(web_page.locator(".notice.ok code")).to_have_text(re.compile(r"^whsec_"))

    status, listing = await web_api.call("GET", "/v1/callback-profiles", web_api_key)
    assert status == 200
    [saved] = listing["items"]
    assert saved["channel"] == "sms"
    assert saved["events"] == ["sms.send"]
    assert saved["url"] == f"{web_sink.url}/hooks/sms?src=web"
    assert saved["headers"] == {"X-Id": "{{message_id}}"}
    assert saved["body_type"] == "json"
    assert saved["body"] == '{"id": "{{message_id}}", "status": "{{status}}"}'

    # Test on the saved, unchanged profile goes through /{id}/test (stored secrets).
    saved_test = re.compile(r"/v1/callback-profiles/[0-9a-f-]{36}/test$")
    async with web_page.expect_request(saved_test):
        await web_page.get_by_role("button", name="Test", exact=True).click()
    await expect(web_page.locator(".test-result .notice")).to_contain_text("Delivered: 200")
    assert len(web_sink.received) == 1

    # Edit: the channel is fixed, other fields change and save.
    await expect(web_page.get_by_label("Select channel API")).to_be_disabled()
    await web_page.get_by_label("Title", exact=True).fill("Order SMS status v2")
    await web_page.get_by_label("Maximum age").fill("2h")
    await save.click()
    await expect(web_page.get_by_role("heading", name="Edit: Order SMS status v2")).to_be_visible()
    status, stored = await web_api.call("GET", f"/v1/callback-profiles/{saved['id']}", web_api_key)
    assert (stored["title"], stored["max_age"]) == ("Order SMS status v2", "2h")

    # Delete asks once more, then the list is empty.
    await web_page.get_by_role("button", name="Delete profile").click()
    await web_page.get_by_role("button", name="Delete permanently").click()
    await expect(
        web_page.locator("#main").get_by_text("No callback profiles match these filters.")
    ).to_be_visible()


async def test_test_button_shows_the_request_sent_and_the_response(
    web_page: Page, web_api: WebApi, web_api_key: str, web_sink: Sink, web_screenshot_dir: Path
) -> None:
    await sign_in(web_page, web_api.url, web_api_key)
    await fill_sms_profile(web_page, web_sink)
    await web_page.get_by_label("Body", exact=True).fill('{"status": "{{status}}"}')
    await web_page.get_by_role("button", name="Test", exact=True).click()

    result = web_page.locator(".test-result")
    await expect(result.locator(".notice")).to_contain_text("Delivered: 200")
    await expect(result).to_contain_text("Request sent")
    await expect(result).to_contain_text(f"{web_sink.url}/hooks/sms?src=web")
    await expect(result).to_contain_text('"received": 1')  # the web_sink's own answer
    # The sticky action bar would cover the bottom of the section in the picture.
    actions = web_page.locator(".actions.sticky")
    await actions.evaluate("el => { el.hidden = true; }")
    await web_page.locator(".test-section").screenshot(path=web_screenshot_dir / "test-result.png")
    await actions.evaluate("el => { el.hidden = false; }")

    [received] = web_sink.received
    assert received["method"] == "POST"
    assert received["path"] == "/hooks/sms?src=web"
    assert received["headers"]["X-Id"]  # rendered from the sample message id
    assert json.loads(received["body"])["status"]

    # Nothing listens on this port: the result says so instead of a response.
    await web_page.get_by_label("URL endpoint").fill(f"http://127.0.0.1:{free_port()}/gone")
    await web_page.get_by_role("button", name="Test", exact=True).click()
    await expect(result.locator(".notice")).to_contain_text("Not delivered")
    await expect(result).not_to_contain_text("Response:")


async def test_every_optional_section_saves_and_comes_back_with_secrets_masked(
    web_page: Page, web_api: WebApi, web_api_key: str
) -> None:
    await sign_in(web_page, web_api.url, web_api_key)
    await web_page.get_by_role("link", name="Add New").click()
    await web_page.get_by_label("Title", exact=True).fill("Chatbot form post")
    await web_page.get_by_label("Select channel API").select_option("chatbot")
    await expect(web_page.get_by_label("HTTP method").locator("option")).to_have_count(4)
    await web_page.get_by_role("checkbox", name=re.compile(r"^chatbot\.action")).check()
    await web_page.get_by_label("URL endpoint").fill("https://bot.example.com/{{session_id}}")
    await web_page.get_by_label("Body type").select_option("form")
    await expect(web_page.get_by_label("Body", exact=True)).to_be_hidden()
    await web_page.get_by_role("button", name="Add form field").click()
    await web_page.get_by_label("Form field 1 name").fill("intent")
    await web_page.get_by_label("Form field 1 value").fill("{{intent}}")
    await web_page.get_by_label("Enable encryption").check()
    await web_page.get_by_label("Algorithm").select_option("aes-128-gcm")
    await web_page.get_by_role("button", name="Generate key").click()
    await web_page.get_by_label("Authentication type").select_option("basic")
    await web_page.get_by_label("Username").fill("bot")
    await web_page.get_by_label("Password").fill("s3cret")
    await web_page.get_by_label("Enable callback required options").check()
    await web_page.get_by_role("checkbox", name="session_id", exact=True).check()
    await web_page.get_by_label("Retry on").select_option("transient_only")
    await web_page.get_by_role("button", name="Save").click()
    await expect(web_page.get_by_role("heading", name="Edit: Chatbot form post")).to_be_visible()

    # The edit page shows what was saved, secrets as ****; saving again keeps them.
    await expect(web_page.get_by_label("Form field 1 value")).to_have_value("{{intent}}")
    await expect(web_page.get_by_label("Key (base64)")).to_have_value("****")
    await expect(web_page.get_by_label("Password")).to_have_value("****")
    await expect(web_page.get_by_role("checkbox", name="session_id", exact=True)).to_be_checked()
    await web_page.get_by_role("button", name="Save").click()
    await expect(web_page.locator("#main").get_by_text("Callback profile saved.")).to_be_visible()

    _, listing = await web_api.call("GET", "/v1/callback-profiles", web_api_key)
    [saved] = listing["items"]
    assert saved["method"] == "POST"
    assert (saved["body_type"], saved["body"]) == ("form", None)
    assert saved["form_fields"] == {"intent": "{{intent}}"}
    assert saved["encryption"] == {
        "enabled": True,
        "algorithm": "aes-128-gcm",
        "scope": "values",
        "key": "****",
    }
    assert saved["authentication"]["type"] == "basic"
    assert saved["authentication"]["username"] == "bot"
    assert saved["authentication"]["password"] == "****"
    assert saved["required_options"] == {"enabled": True, "variables": ["session_id"]}
    assert saved["retry_on"] == "transient_only"


async def test_rows_are_added_removed_and_renumbered_alike_for_headers_and_filters(
    web_page: Page, web_api: WebApi, web_api_key: str, web_sink: Sink
) -> None:
    await sign_in(web_page, web_api.url, web_api_key)
    await fill_sms_profile(web_page, web_sink)  # Header 1 is X-Id
    await web_page.get_by_label("Body", exact=True).fill('{"status": "{{status}}"}')
    add_header = web_page.get_by_role("button", name="Add header")
    for name, value in (("X-Gone", "1"), ("X-Tag", "{{status}}")):
        await add_header.click()
        number = await web_page.locator(".rows-group[data-field='headers'] .row").count()
        await expect(web_page.get_by_label(f"Header {number} name")).to_be_focused()
        await web_page.get_by_label(f"Header {number} name").fill(name)
        await web_page.get_by_label(f"Header {number} value").fill(value)

    # Removing a middle row renumbers the rest and focuses the row that took its place.
    await web_page.get_by_role("button", name="Remove header 2").click()
    await expect(web_page.get_by_label("Header 2 name")).to_have_value("X-Tag")
    await expect(web_page.get_by_label("Header 2 name")).to_be_focused()
    await expect(web_page.get_by_label("Header 2 value")).to_have_attribute("data-row", "2")
    await expect(web_page.get_by_role("button", name="Remove header 3")).to_have_count(0)

    # An API error on headers.<name> lands beside that row's value.
    await add_header.click()
    await web_page.get_by_label("Header 3 name").fill("Host")
    await web_page.get_by_label("Header 3 value").fill("example.org")
    await web_page.get_by_role("button", name="Save").click()
    error = await field_error(web_page, "Header 3 value")
    await expect(error).to_contain_text("set by the platform")
    await expect(web_page.locator(".error-summary")).to_contain_text("headers.Host")

    # Removing the last row focuses the one before it.
    await web_page.get_by_role("button", name="Remove header 3").click()
    await expect(web_page.get_by_label("Header 2 name")).to_be_focused()

    # The filters' rows behave the same; removing the only row focuses Add.
    add_filter = web_page.get_by_role("button", name="Add filter")
    await add_filter.click()
    await expect(web_page.get_by_label("Filter 1 variable")).to_be_focused()
    await add_filter.click()
    await web_page.get_by_label("Filter 2 condition").select_option("equals")
    await expect(web_page.get_by_label("Filter 2 values")).to_have_attribute(
        "data-field", "filters.1.equals"
    )
    await web_page.get_by_role("button", name="Remove filter 1").click()
    await expect(web_page.get_by_label("Filter 1 variable")).to_be_focused()
    await expect(web_page.get_by_label("Filter 1 condition")).to_have_value("equals")
    await expect(web_page.get_by_label("Filter 1 values")).to_have_attribute(
        "data-field", "filters.0.equals"
    )
    await web_page.get_by_role("button", name="Remove filter 1").click()
    await expect(add_filter).to_be_focused()
    await expect(web_page.locator(".filter-row")).to_have_count(0)

    await web_page.get_by_role("button", name="Save").click()
    await expect(web_page.get_by_role("heading", name="Edit: Order SMS status")).to_be_visible()
    _, listing = await web_api.call("GET", "/v1/callback-profiles", web_api_key)
    [saved] = listing["items"]
    assert saved["headers"] == {"X-Id": "{{message_id}}", "X-Tag": "{{status}}"}
    assert saved["filters"] == []
