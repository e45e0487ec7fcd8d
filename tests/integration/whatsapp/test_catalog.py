"""``GET /v1/channels`` lists every variable of every event of contract §5 with a
description and a realistic example, and save-time validation renders with them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from callbacks.settings import Settings

from tests.integration.api.helpers import ADMIN, start_app

pytestmark = pytest.mark.integration

ENVELOPE = {
    "event_id", "event", "occurred_at", "account_id", "callback_profile_id", "ref", "ref1",
    "ref2", "channel", "attempt", "is_test",
}  # fmt: skip
# Contract §5, field by field.
CONTRACT: dict[str, set[str]] = {
    "sms.send": {
        "message_id", "batch_id", "to", "sender", "status", "dlr_status", "status_code",
        "status_description", "error_code", "error_message", "submitted_at", "sent_at",
        "done_at", "units", "part", "parts", "price", "currency", "mcc", "mnc", "operator",
        "circle", "type", "dlt_template_id", "custom",
    },
    "email.send": {
        "message_id", "smtp_message_id", "to", "from", "subject", "status", "reason",
        "smtp_response", "smtp_status", "bounce_type", "attempt", "url", "ip", "user_agent",
        "tags", "custom",
    },
    "whatsapp.status": {
        "message_id", "to", "business_number", "phone_number_id", "waba_id", "status",
        "conversation_id", "conversation_origin", "conversation_expires_at",
        "pricing_billable", "pricing_category", "price", "currency", "error_code",
        "error_title", "error_message", "template_name", "template_language", "custom",
    },
    "whatsapp.incoming": {
        "message_id", "from", "name", "business_number", "type", "body", "media_url",
        "mime_type", "filename", "location", "contacts", "reply_id", "reply_title",
        "button_payload", "context_message_id", "received_at",
    },
    "whatsapp.template_status": {
        "template_id", "template_name", "template_language", "status", "reason",
    },
    "whatsapp.phone_quality": {"business_number", "quality_event", "current_limit"},
    "chatbot.action": {
        "session_id", "from", "source_channel", "intent", "text", "slots", "action",
    },
}  # fmt: skip
PLACEHOLDER_EXAMPLES = {"", "string", "example", "value", "test", "foo", "bar", "xxx"}


@pytest.fixture
async def client(topics: Settings) -> AsyncIterator[tuple[aiohttp.ClientSession, str, str]]:
    runner, base = await start_app(topics)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                base + "/v1/accounts", json={"name": "catalog"}, headers=ADMIN
            ) as reply:
                assert reply.status == 201
                key = (await reply.json())["api_key"]
            yield session, base, key
    finally:
        await runner.cleanup()


async def test_channels_list_every_variable_with_description_and_example(
    client: tuple[aiohttp.ClientSession, str, str],
) -> None:
    session, base, key = client
    async with session.get(base + "/v1/channels", headers={"api-key": key}) as reply:
        assert reply.status == 200
        channels: list[dict[str, Any]] = await reply.json()
    by_name = {c["channel"]: c for c in channels}
    assert {"sms", "email", "whatsapp", "chatbot"} <= set(by_name)
    assert set(by_name["chatbot"]["methods"]) == {"GET", "POST", "PUT", "DELETE"}
    assert set(by_name["whatsapp"]["methods"]) == {"GET", "POST"}
    events = {e["name"]: (c["channel"], e) for c in channels for e in c["events"]}
    assert set(events) == set(CONTRACT)
    for name, fields in CONTRACT.items():
        channel, listed = events[name]
        assert channel == name.split(".")[0]
        variables = {v["name"]: v for v in listed["variables"]}
        assert set(variables) == fields | ENVELOPE, name
        for var in variables.values():
            where = f"{name}.{var['name']}"
            assert len(var["description"]) >= 8, where
            assert var.get("example") is not None, where
            assert str(var["example"]).strip().lower() not in PLACEHOLDER_EXAMPLES, where
    incoming = {v["name"]: v["example"] for v in events["whatsapp.incoming"][1]["variables"]}
    assert set(incoming["location"]) == {"latitude", "longitude", "name", "address"}
    assert isinstance(incoming["contacts"], list)
    assert incoming["contacts"][0]["name"]
    status = {v["name"]: v["example"] for v in events["whatsapp.status"][1]["variables"]}
    assert status["message_id"].startswith("wamid.")


@pytest.mark.parametrize("event", sorted(CONTRACT))
async def test_a_profile_using_every_variable_saves(
    client: tuple[aiohttp.ClientSession, str, str], event: str
) -> None:
    """Save-time validation renders with the catalog's examples: a JSON body with every
    variable alone and inside strings, and an XML body, must both come out valid."""
    session, base, key = client
    channel = event.split(".", maxsplit=1)[0]
    names = sorted(CONTRACT[event] | ENVELOPE)
    json_body = "{" + ", ".join(f'"{n}": {{{{{n}}}}}, "{n}_s": "{{{{{n}}}}}"' for n in names) + "}"
    xml_body = (
        "<e>" + "".join(f'<v n="{n}" a="{{{{{n}}}}}">{{{{{n}}}}}</v>' for n in names) + "</e>"
    )
    bodies = [("json", json_body), ("xml", xml_body)]
    for body_type, body in bodies:
        profile = {
            "title": f"every variable of {event}",
            "channel": channel,
            "events": [event],
            "method": "PUT" if channel == "chatbot" and body_type == "json" else "POST",
            "url": "https://example.in/hooks/{{" + names[0] + "}}",
            "headers": {"X-All": "".join("{{" + n + "}}" for n in names[:5])},
            "query_params": {n: "{{" + n + "}}" for n in names},
            "body_type": body_type,
            "body": body,
        }
        async with session.post(
            base + "/v1/callback-profiles", json=profile, headers={"api-key": key}
        ) as reply:
            assert reply.status == 201, (body_type, await reply.text())
