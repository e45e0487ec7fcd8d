"""A valid event reaches its endpoint exactly as the profile describes (contract §4, §6)."""

from __future__ import annotations

import base64
import json
import os
from urllib.parse import parse_qs

import pytest
from callbacks.encryption import decrypt_body, decrypt_value
from callbacks.settings import Settings
from standardwebhooks.webhooks import Webhook

from tests.helpers import KAFKA_FACING
from tests.integration.dispatcher.helpers import (
    drain,
    make_profile,
    metric,
    outcomes,
    produce_events,
    publish_profiles,
    sms_event,
)
from tests.integration.dispatcher.sink import Sink

pytestmark = KAFKA_FACING


async def test_sms_status_reaches_endpoint_signed(topics: Settings, sink: Sink) -> None:
    profile = make_profile(
        sink.url("/hooks/sms"),
        headers={"X-Api-Key": "abc", "X-Msg": "{{message_id}}"},
        query_params={"msg": "{{message_id}}", "src": "kaleyra"},
        authentication={"type": "basic", "username": "u", "password": "p"},
    )
    await publish_profiles(topics, profile)
    event = sms_event(profile, data={"to": 'quote " and <tag> & ünï'})
    await produce_events(topics, [event])
    dispatcher = await drain(topics)

    [got] = sink.at("/hooks/sms")
    assert got.method == "POST"
    assert json.loads(got.body) == {
        "id": event["data"]["message_id"],
        "status": "delivered",
        "to": 'quote " and <tag> & ünï',
    }
    assert parse_qs(got.query_string) == {"msg": [event["data"]["message_id"]], "src": ["kaleyra"]}
    assert got.header("X-Api-Key") == "abc"
    assert got.header("X-Msg") == event["data"]["message_id"]
    assert got.header("Authorization") == "Basic " + base64.b64encode(b"u:p").decode()
    assert got.header(
        "User-Agent",
    ).startswith("callback-profiles/")  # type: ignore[union-attr]
    # An independent implementation of the Standard Webhooks check.
    Webhook(profile.signing_secrets[0].secret).verify(got.body, got.headers)

    [outcome] = await outcomes(topics)
    assert outcome["status"] == "delivered"
    assert outcome["final"] is True
    assert outcome["attempt"] == 1
    assert outcome["http_status"] == 200
    assert outcome["event_id"] == event["event_id"]
    assert outcome["delivery_id"] == got.header("webhook-id")
    assert outcome["source_topic"] == topics.topics.source_for("sms.send")
    assert metric(dispatcher, "callbacks_deliveries_total", outcome="delivered") == 1
    assert metric(dispatcher, "callbacks_events_consumed_total", topic="sms.send") == 1


@pytest.mark.parametrize(
    ("body_type", "body", "content_type", "expected"),
    [
        ("xml", "<s><to>{{to}}</to></s>", "xml", b"<s><to>a&lt;b&amp;c</to></s>"),
        ("html", "<p>{{to}}</p>", "html", b"<p>a&lt;b&amp;c</p>"),
        ("text", "to={{to}}", "text/plain", b"to=a<b&c"),
        ("json", '{"to": {{to}}, "n": {{units}}}', "json", b'{"to": "a<b&c", "n": null}'),
    ],
)
async def test_each_body_type_is_escaped_for_where_it_lands(
    topics: Settings, sink: Sink, body_type: str, body: str, content_type: str, expected: bytes
) -> None:
    profile = make_profile(sink.url("/b"), body_type=body_type, body=body)
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile, data={"to": "a<b&c"})])
    await drain(topics)
    [got] = sink.at("/b")
    assert got.body == expected
    assert content_type in (got.header("Content-Type") or "")


async def test_form_body_and_get_with_query(topics: Settings, sink: Sink) -> None:
    form = make_profile(
        sink.url("/form"),
        body_type="form",
        body=None,
        form_fields={"to": "{{to}}", "s": "{{status}}"},
    )
    get = make_profile(
        sink.url("/get/{{message_id}}"),
        method="GET",
        body_type=None,
        body=None,
        query_params={"to": "{{to}}"},
    )
    await publish_profiles(topics, form, get)
    e1 = sms_event(form, data={"to": "+91 98&7"})
    e2 = sms_event(get, data={"to": "+91 98&7", "message_id": "a/b c"})
    await produce_events(topics, [e1, e2])
    await drain(topics)
    [f] = sink.at("/form")
    assert parse_qs(f.body.decode()) == {"to": ["+91 98&7"], "s": ["delivered"]}
    assert "application/x-www-form-urlencoded" in (f.header("Content-Type") or "")
    [g] = [r for r in sink.received if r.method == "GET"]
    assert g.path == "/get/a/b c"  # percent-encoded on the wire, decoded by the server
    assert parse_qs(g.query_string) == {"to": ["+91 98&7"]}
    assert g.body == b""


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_chatbot_put_and_delete(topics: Settings, sink: Sink, method: str) -> None:
    body = '{"s": "{{session_id}}", "t": "{{text}}"}' if method == "PUT" else None
    profile = make_profile(
        sink.url("/bot"),
        channel="chatbot",
        events=["chatbot.action"],
        method=method,
        body_type="json" if body else None,
        body=body,
    )
    await publish_profiles(topics, profile)
    event = sms_event(profile, event="chatbot.action", data={})
    event["data"] = {"session_id": "s-1", "from": "+9198", "text": "hi"}
    await produce_events(topics, [event], topic=topics.topics.source_for("chatbot.action"))
    await drain(topics)
    [got] = sink.at("/bot")
    assert got.method == method
    if body:
        assert json.loads(got.body) == {"s": "s-1", "t": "hi"}
    else:
        assert got.body == b""


@pytest.mark.parametrize("algorithm", ["aes-128-gcm", "aes-192-cfb", "aes-256-gcm"])
async def test_values_encrypted_and_decryptable_with_only_the_key(
    topics: Settings, sink: Sink, algorithm: str
) -> None:
    size = int(algorithm.split("-")[1]) // 8
    key = os.urandom(size)
    profile = make_profile(
        sink.url("/enc"),
        encryption={
            "enabled": True,
            "algorithm": algorithm,
            "scope": "values",
            "key": base64.b64encode(key).decode(),
        },
    )
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    await produce_events(topics, [event])
    await drain(topics)
    [got] = sink.at("/enc")
    sent = json.loads(got.body)
    assert decrypt_value(algorithm, key, sent["to"]).decode() == event["data"]["to"]
    assert decrypt_value(algorithm, key, sent["id"]).decode() == event["data"]["message_id"]
    Webhook(profile.signing_secrets[0].secret).verify(got.body, got.headers)


async def test_body_encrypted_as_envelope(topics: Settings, sink: Sink) -> None:
    key = os.urandom(32)
    profile = make_profile(
        sink.url("/envelope"),
        encryption={
            "enabled": True,
            "algorithm": "aes-256-cfb",
            "scope": "body",
            "key": base64.b64encode(key).decode(),
        },
    )
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    await produce_events(topics, [event])
    await drain(topics)
    [got] = sink.at("/envelope")
    envelope = json.loads(got.body)
    assert envelope["alg"] == "aes-256-cfb"
    plain = json.loads(decrypt_body("aes-256-cfb", key, envelope))
    assert plain["id"] == event["data"]["message_id"]
    assert "application/json" in (got.header("Content-Type") or "")
    Webhook(profile.signing_secrets[0].secret).verify(got.body, got.headers)


async def test_default_channel_gets_any_event_with_envelope_variables_only(
    topics: Settings, sink: Sink
) -> None:
    profile = make_profile(
        sink.url("/default"),
        channel="default",
        events=[],
        body='{"e": "{{event}}", "id": "{{event_id}}", "to": {{to}}, "ref": "{{ref}}"}',
    )
    await publish_profiles(topics, profile)
    event = sms_event(profile)
    await produce_events(topics, [event])
    await drain(topics)
    [got] = sink.at("/default")
    assert json.loads(got.body) == {
        "e": "sms.send",
        "id": event["event_id"],
        "to": None,
        "ref": "order_123",
    }


async def test_bearer_and_rotation_send_both_signatures(topics: Settings, sink: Sink) -> None:
    from datetime import UTC, datetime, timedelta

    from callbacks.models.profiles import SigningSecret
    from callbacks.signing import generate_secret

    now = datetime.now(UTC)
    new, old = generate_secret(), generate_secret()
    profile = make_profile(
        sink.url("/rot"),
        authentication={"type": "bearer", "token": "t0k"},
        signing_secrets=[
            SigningSecret(secret=new, created_at=now),
            SigningSecret(
                secret=old, created_at=now - timedelta(days=9), expires_at=now + timedelta(hours=24)
            ),
        ],
    )
    await publish_profiles(topics, profile)
    await produce_events(topics, [sms_event(profile)])
    await drain(topics)
    [got] = sink.at("/rot")
    assert got.header("Authorization") == "Bearer t0k"
    assert len((got.header("webhook-signature") or "").split(" ")) == 2
    Webhook(new).verify(got.body, got.headers)
    Webhook(old).verify(got.body, got.headers)


async def test_profile_updates_and_tombstones_govern_deliveries(
    topics: Settings, sink: Sink
) -> None:
    first = make_profile(sink.url("/v1"))
    second = first.model_copy(update={"url": sink.url("/v2")})
    gone = make_profile(sink.url("/gone"))
    await publish_profiles(topics, first, gone)
    await publish_profiles(topics, second, tombstones=[gone.id])
    await produce_events(topics, [sms_event(first), sms_event(gone)])
    dispatcher = await drain(topics)
    assert len(sink.at("/v2")) == 1
    assert sink.at("/v1") == []
    assert sink.at("/gone") == []
    # Remembered as deleted: skipped at once, not held for a profile that may yet come.
    assert metric(dispatcher, "callbacks_events_skipped_total", reason="deleted") == 1
    assert metric(dispatcher, "callbacks_profiles_cached") == 1
