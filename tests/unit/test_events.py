from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from callbacks.models.events import InvalidEvent, event_variables, parse_event


def envelope(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": "c0f1",
        "event": "sms.send",
        "account_id": "acc-1",
        "callback_profile_id": "prof-1",
        "occurred_at": "2026-11-24T10:00:00Z",
        "ref": "order_123",
        "ref1": None,
        "data": {
            "message_id": "ee8a30d:1",
            "to": "+919876543210",
            "sender": "KLRHXA",
            "status": "delivered",
            "dlr_status": "DELIVRD",
            "status_code": "000",
        },
    }
    doc.update(overrides)
    return doc


def raw(doc: Any) -> bytes:
    return orjson.dumps(doc)


def test_parse_valid_event() -> None:
    event = parse_event(raw(envelope(extra="ignored")))
    assert event.event == "sms.send"
    assert event.occurred_at == datetime(2026, 11, 24, 10, tzinfo=UTC)
    assert event.ref == "order_123"
    assert event.ref1 is None
    assert event.ref2 is None
    assert event.data["dlr_status"] == "DELIVRD"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (None, "invalid_json"),
        (b"", "invalid_json"),
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "not_an_object"),
        (b'"text"', "not_an_object"),
        (raw({k: v for k, v in envelope().items() if k != "event_id"}), "missing_field:event_id"),
        (raw(envelope(account_id=None)), "missing_field:account_id"),
        (raw(envelope(callback_profile_id="")), "missing_field:callback_profile_id"),
        (raw(envelope(event_id=42)), "invalid_value:event_id"),
        (raw(envelope(event="sms.unknown")), "unknown_event:sms.unknown"),
        (raw(envelope(occurred_at=None)), "missing_field:occurred_at"),
        (raw(envelope(occurred_at="yesterday")), "invalid_value:occurred_at"),
        (raw(envelope(occurred_at=1700000000)), "invalid_value:occurred_at"),
        (raw(envelope(ref=123)), "invalid_value:ref"),
        (raw(envelope(data=None)), "missing_field:data"),
        (raw(envelope(data=[1])), "invalid_value:data"),
        (raw(envelope(data="x")), "invalid_value:data"),
        (raw(envelope(data={"message_id": "m", "status": "sent"})), "missing_field:data.to"),
        (
            raw(envelope(data={"message_id": "m", "to": None, "status": "sent"})),
            "missing_field:data.to",
        ),
        (
            raw(envelope(data={"message_id": "m", "to": "+91", "status": "Delivered"})),
            "invalid_value:data.status",
        ),
        (
            raw(envelope(data={"message_id": "m", "to": "+91", "status": "sent", "type": 1})),
            "invalid_value:data.type",
        ),
        (
            raw(
                envelope(
                    event="whatsapp.incoming",
                    data={"message_id": "wamid.x", "from": "+91", "type": "hologram"},
                )
            ),
            "invalid_value:data.type",
        ),
        (
            raw(envelope(event="whatsapp.phone_quality", data={"business_number": "+91"})),
            "missing_field:data.quality_event",
        ),
    ],
)
def test_parse_rejects(payload: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as info:
        parse_event(payload)
    assert info.value.reason == reason


def test_optional_value_set_fields_may_be_null() -> None:
    data = {"message_id": "m", "to": "+91", "status": "sent", "dlr_status": None}
    assert parse_event(raw(envelope(data=data))).data["dlr_status"] is None


@pytest.mark.parametrize(
    ("event", "data"),
    [
        (
            "email.send",
            {"message_id": "m", "to": "a@b.in", "status": "bounced", "bounce_type": "hard"},
        ),
        ("whatsapp.status", {"message_id": "wamid.x", "to": "+91", "status": "read"}),
        (
            "whatsapp.incoming",
            {
                "message_id": "wamid.x",
                "from": "+91",
                "type": "location",
                "location": {"latitude": 12.97, "longitude": 77.59},
            },
        ),
        (
            "whatsapp.template_status",
            {"template_id": "1", "template_name": "t", "status": "approved"},
        ),
        ("whatsapp.phone_quality", {"business_number": "+91", "quality_event": "flagged"}),
        ("chatbot.action", {"session_id": "s", "from": "+91", "action": "delete"}),
    ],
)
def test_every_event_parses(event: str, data: dict[str, Any]) -> None:
    assert parse_event(raw(envelope(event=event, data=data))).data == data


def test_naive_timestamp_is_utc() -> None:
    event = parse_event(raw(envelope(occurred_at="2026-11-24T10:00:00")))
    assert event.occurred_at.tzinfo is not None


def test_event_variables() -> None:
    data = {"message_id": "m", "to": "+91", "status": "delivered", "attempt": 7}
    event = parse_event(raw(envelope(event="email.send", data=data)))
    variables = event_variables(event, channel="email", attempt=2, is_test=True)
    assert variables["to"] == "+91"
    assert variables["event_id"] == "c0f1"
    assert variables["occurred_at"] == "2026-11-24T10:00:00Z"
    assert variables["ref"] == "order_123"
    assert variables["ref2"] is None
    assert variables["channel"] == "email"
    assert variables["attempt"] == 2
    assert variables["is_test"] is True
    assert event.data["attempt"] == 7  # the event itself is untouched
