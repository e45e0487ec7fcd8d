"""Every WhatsApp and chatbot event reaches its endpoint, by every method (issue 8)."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import parse_qs, unquote

import pytest
from callbacks.encryption import decrypt_value
from callbacks.settings import Settings
from callbacks_dev.simulator.events import Gateway
from callbacks_dev.simulator.receiver import verify_signature
from standardwebhooks.webhooks import Webhook

from tests.integration.dispatcher.helpers import drain, metric, outcomes, publish_profiles
from tests.integration.dispatcher.sink import Reply, Sink
from tests.integration.whatsapp.helpers import RawSink, event, produce, profile

pytestmark = pytest.mark.integration

HINDI_NAME = "प्रिया शर्मा 🌸"
HINDI_TEXT = 'नमस्ते! मेरा ऑर्डर कब आएगा? 📦 "जल्दी" & <ज़रूरी>\nधन्यवाद 🙏'


async def test_each_whatsapp_and_chatbot_event_reaches_its_endpoint(
    topics: Settings, sink: Sink, gateway: Gateway
) -> None:
    status_post = profile(
        sink,
        "/wa/status",
        "whatsapp",
        ["whatsapp.status"],
        body_type="json",
        body='{"id": "{{message_id}}", "status": "{{status}}", "to": "{{to}}", '
        '"error_code": "{{error_code}}", "error": "{{error_title}}", "price": {{price}}, '
        '"billable": {{pricing_billable}}, "custom": {{custom}}, "channel": "{{channel}}", '
        '"attempt": {{attempt}}, "event": "{{event}}"}',
    )
    incoming_post = profile(
        sink,
        "/wa/incoming",
        "whatsapp",
        ["whatsapp.incoming"],
        headers={"X-From": "{{from}}", "X-Type": "{{type}}", "X-Name": "{{name}}"},
        body_type="json",
        body='{"from": "{{from}}", "name": "{{name}}", "text": "{{body}}", '
        '"type": "{{type}}", "reply_to": "{{context_message_id}}"}',
    )
    template_get = profile(
        sink,
        "/wa/templates",
        "whatsapp",
        ["whatsapp.template_status"],
        method="GET",
        query_params={
            "id": "{{template_id}}",
            "name": "{{template_name}}",
            "status": "{{status}}",
            "reason": "{{reason}}",
        },
    )
    quality_text = profile(
        sink,
        "/wa/quality",
        "whatsapp",
        ["whatsapp.phone_quality"],
        body_type="text",
        body="{{business_number}} is {{quality_event}} at {{current_limit}}",
    )
    chatbot_put = profile(
        sink,
        "",
        "chatbot",
        ["chatbot.action"],
        method="PUT",
        url=sink.url("/bot/put/{{session_id}}"),
        body_type="json",
        body='{"action": "{{action}}", "intent": "{{intent}}", "text": "{{text}}", '
        '"slots": {{slots}}, "from": "{{from}}", "via": "{{source_channel}}"}',
    )
    chatbot_delete = profile(
        sink,
        "",
        "chatbot",
        ["chatbot.action"],
        method="DELETE",
        url=sink.url("/bot/delete/{{session_id}}?intent={{intent}}"),
    )
    profiles = [status_post, incoming_post, template_get, quality_text, chatbot_put, chatbot_delete]
    await publish_profiles(topics, *profiles)

    wamid = "wamid.HBgMOTE5ODc2NTQzMjEwFQIAERgSQjdBNzg3MDc3NzY0RjQ0MEE1AA=="
    lifecycle = [
        event(gateway, status_post, "whatsapp.status", {"message_id": wamid, "status": s})
        for s in ("sent", "delivered", "read")
    ]
    failed = event(
        gateway,
        status_post,
        "whatsapp.status",
        {"status": "failed", "error_code": "131047", "error_title": "Re-engagement message"},
    )
    incoming = event(
        gateway,
        incoming_post,
        "whatsapp.incoming",
        {"name": HINDI_NAME, "body": HINDI_TEXT, "type": "text"},
    )
    approved = event(
        gateway, template_get, "whatsapp.template_status", {"status": "approved"}, drop=("reason",)
    )
    rejected = event(
        gateway,
        template_get,
        "whatsapp.template_status",
        {"status": "rejected", "reason": "TAG_CONTENT_MISMATCH", "template_name": "ऑफ़र_दिवाली"},
    )
    flagged = event(gateway, quality_text, "whatsapp.phone_quality", {"quality_event": "flagged"})
    create = event(
        gateway,
        chatbot_put,
        "chatbot.action",
        {"action": "create", "text": "टेबल बुक करो 🍽️", "session_id": "sess_abc"},
    )
    delete = event(
        gateway,
        chatbot_delete,
        "chatbot.action",
        {"action": "delete", "session_id": "sess_abc", "intent": "cancel_order"},
    )
    events = [*lifecycle, failed, incoming, approved, rejected, flagged, create, delete]
    await produce(topics, events)
    dispatcher = await drain(topics)

    statuses = [json.loads(r.body) for r in sink.at("/wa/status")]
    assert sorted((s["id"], s["status"]) for s in statuses) == sorted(
        [(wamid, "sent"), (wamid, "delivered"), (wamid, "read"), (failed.key, "failed")]
    )
    [fail] = [s for s in statuses if s["status"] == "failed"]
    assert fail["error_code"] == "131047"
    assert fail["error"] == "Re-engagement message"
    read = next(s for s in statuses if s["status"] == "read")
    assert read["channel"] == "whatsapp"
    assert read["event"] == "whatsapp.status"
    assert read["attempt"] == 1
    assert read["billable"] is True
    assert read["price"] == lifecycle[2].data["price"]
    assert read["custom"] == lifecycle[2].data["custom"]

    [got] = sink.at("/wa/incoming")
    assert json.loads(got.body) == {
        "from": incoming.data["from"],
        "name": HINDI_NAME,
        "text": HINDI_TEXT,
        "type": "text",
        "reply_to": "",
    }
    assert (got.header("Content-Type") or "").startswith("application/json")
    assert got.header("X-From") == incoming.data["from"]
    # Header values are inserted verbatim (contract §4): UTF-8 on the wire.
    assert got.header("X-Name") == HINDI_NAME
    Webhook(incoming_post.signing_secrets[0].secret).verify(got.body, got.headers)

    templates = [parse_qs(r.query_string, keep_blank_values=True) for r in sink.at("/wa/templates")]
    assert all(r.method == "GET" and r.body == b"" for r in sink.at("/wa/templates"))
    assert {q["status"][0]: q for q in templates} == {
        "approved": {
            "id": [approved.key],
            "name": [approved.data["template_name"]],
            "status": ["approved"],
            "reason": [""],  # absent optional field: the parameter stays, empty
        },
        "rejected": {
            "id": [rejected.key],
            "name": ["ऑफ़र_दिवाली"],
            "status": ["rejected"],
            "reason": ["TAG_CONTENT_MISMATCH"],
        },
    }

    [quality] = sink.at("/wa/quality")
    assert quality.body.decode() == (
        f"{flagged.data['business_number']} is flagged at {flagged.data['current_limit']}"
    )

    [put] = sink.at("/bot/put/sess_abc")
    assert put.method == "PUT"
    assert json.loads(put.body) == {
        "action": "create",
        "intent": create.data["intent"],
        "text": "टेबल बुक करो 🍽️",
        "slots": create.data["slots"],
        "from": create.data["from"],
        "via": create.data["source_channel"],
    }
    [gone] = sink.at("/bot/delete/sess_abc")
    assert gone.method == "DELETE"
    assert gone.body == b""
    assert gone.header("Content-Type") is None
    assert unquote(gone.query_string) == "intent=cancel_order"
    # No body to sign but the id and timestamp (standardwebhooks' verify parses JSON).
    assert verify_signature(
        [chatbot_delete.signing_secrets[0].secret],
        gone.header("webhook-id") or "",
        gone.header("webhook-timestamp") or "",
        b"",
        gone.header("webhook-signature") or "",
    )

    assert len(await outcomes(topics)) == len(events)
    assert metric(dispatcher, "callbacks_deliveries_total", outcome="delivered") == len(events)
    assert metric(dispatcher, "callbacks_events_consumed_total", topic="whatsapp.events") == 8
    assert metric(dispatcher, "callbacks_events_consumed_total", topic="chatbot.events") == 2


async def test_whatsapp_and_chatbot_callbacks_are_encrypted_and_retried_like_sms(
    topics: Settings, sink: RawSink, gateway: Gateway
) -> None:
    key = os.urandom(32)
    incoming_post = profile(
        sink,
        "/wa/enc",
        "whatsapp",
        ["whatsapp.incoming"],
        body_type="json",
        body='{"name": "{{name}}", "location": {{location}}, "lat": {{location.latitude}}}',
        encryption={
            "enabled": True,
            "algorithm": "aes-256-gcm",
            "scope": "values",
            "key": base64.b64encode(key).decode(),
        },
    )
    chatbot_put = profile(
        sink,
        "/bot/flaky",
        "chatbot",
        ["chatbot.action"],
        method="PUT",
        body_type="json",
        body='{"action": "{{action}}", "attempt": {{attempt}}}',
    )
    sink.script("/bot/flaky", Reply(503, headers={"Retry-After": "0"}), Reply(200))
    await publish_profiles(topics, incoming_post, chatbot_put)
    location = {"latitude": 19.076, "longitude": 72.8777, "name": "मुंबई 🌊", "address": "Fort"}
    incoming = event(
        gateway,
        incoming_post,
        "whatsapp.incoming",
        {"name": HINDI_NAME, "type": "location", "location": location},
    )
    action = event(gateway, chatbot_put, "chatbot.action", {"action": "update"})
    await produce(topics, [incoming, action])
    await drain(topics)

    [got] = sink.at("/wa/enc")
    sent = json.loads(got.body)
    # With scope "values" every inserted value becomes the encryption of its text:
    # an object's text is its compact JSON.
    assert decrypt_value("aes-256-gcm", key, sent["name"]).decode() == HINDI_NAME
    assert json.loads(decrypt_value("aes-256-gcm", key, sent["location"])) == location
    assert decrypt_value("aes-256-gcm", key, sent["lat"]) == b"19.076"

    first, second = sink.at("/bot/flaky")
    assert first.header("webhook-id") == second.header("webhook-id")
    assert [json.loads(r.body)["attempt"] for r in (first, second)] == [1, 2]
    statuses = [
        (o["attempt"], o["status"])
        for o in await outcomes(topics)
        if o["event"] == "chatbot.action"
    ]
    assert statuses == [(1, "retrying"), (2, "delivered")]
