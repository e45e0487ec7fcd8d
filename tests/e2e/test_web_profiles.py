"""A person managing callback profiles through the web page, in headless Chromium."""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from callbacks.devstack.processes import free_port
from playwright.async_api import FloatRect, Locator, Page, expect

from tests.e2e.conftest import WEB_TEST_TIMEOUT_S, Sink, WebApi
from tests.e2e.test_web_page import sign_in

# The upper part of a desktop page: enough for the README, small as a file.
TOP: FloatRect = {"x": 0, "y": 0, "width": 1280, "height": 640}

pytestmark = pytest.mark.timeout(WEB_TEST_TIMEOUT_S)


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


async def create(web_api: WebApi, key: str, **fields: Any) -> dict[str, Any]:
    status, body = await web_api.call("POST", "/v1/callback-profiles", key, fields)
    assert status == 201, body
    return dict(body)


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
        await db_pool.execute(
            """INSERT INTO deliveries (delivery_id, account_id, profile_id, event_id, event,
                   channel, attempt, attempt_id, status, final, http_status, error, latency_ms,
                   first_attempted_at, last_attempted_at, source_topic, source_partition,
                   source_offset)
               VALUES ($1, $2, $3, $4, 'sms.send', 'sms', $5, $6, $7, true, $8, NULL, 12.5,
                   $9, $9, $10, 0, 0)""",
            delivery_id,
            account,
            uuid.UUID(profile["id"]),
            f"evt-{delivery_id}",
            attempt,
            f"{delivery_id}-a{attempt}",
            status,
            http,
            now,
            topic,
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
