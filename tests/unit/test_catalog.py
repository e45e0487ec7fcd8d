import json

import orjson
import pytest
from callbacks.catalog import (
    CHANNELS,
    ENVELOPE_VARIABLES,
    EVENTS,
    catalog_document,
    encryption_document,
    sample_values,
    variables_for,
)
from callbacks.topics import EVENT_TOPIC

CONTRACT_REQUIRED = {
    "sms.send": {"message_id", "to", "status"},
    "email.send": {"message_id", "to", "status"},
    "whatsapp.status": {"message_id", "to", "status"},
    "whatsapp.incoming": {"message_id", "from", "type"},
    "whatsapp.template_status": {"template_id", "template_name", "status"},
    "whatsapp.phone_quality": {"business_number", "quality_event"},
    "chatbot.action": {"session_id", "from"},
}


def test_every_event_of_the_contract_with_its_topic_and_channel() -> None:
    assert set(EVENTS) == set(EVENT_TOPIC)
    for name, spec in EVENTS.items():
        assert spec.topic == EVENT_TOPIC[name]
        assert name in CHANNELS[spec.channel].events
    assert CHANNELS["default"].events == ()


@pytest.mark.parametrize(("event", "required"), CONTRACT_REQUIRED.items())
def test_required_fields(event: str, required: set[str]) -> None:
    assert {f.name for f in EVENTS[event].fields if f.required} == required


def test_every_variable_is_documented_with_an_example_in_its_set() -> None:
    for spec in EVENTS.values():
        names = [f.name for f in spec.fields]
        assert len(names) == len(set(names)), spec.name
        for field in spec.fields:
            assert field.description, field.name
            assert field.example is not None, field.name
            if field.allowed is not None:
                assert field.example in field.allowed, field.name


@pytest.mark.parametrize("channel", ["default", "sms", "email", "whatsapp"])
def test_methods_get_post(channel: str) -> None:
    assert CHANNELS[channel].methods == ("GET", "POST")


def test_chatbot_methods() -> None:
    assert set(CHANNELS["chatbot"].methods) == {"GET", "POST", "PUT", "DELETE"}


def test_variables_for() -> None:
    envelope = {v.name for v in ENVELOPE_VARIABLES}
    assert envelope == {
        "event_id", "event", "occurred_at", "account_id", "callback_profile_id",
        "ref", "ref1", "ref2", "channel", "attempt", "is_test",
    }  # fmt: skip
    assert set(variables_for("default", [])) == envelope
    sms = variables_for("sms", ["sms.send"])
    assert {"message_id", "dlr_status", "custom"} | envelope <= set(sms)
    wa = variables_for("whatsapp", ["whatsapp.status", "whatsapp.incoming"])
    assert {"wamid" in str(wa["message_id"].example), "location" in wa} == {True}
    # an event of another channel contributes nothing
    assert "session_id" not in variables_for("sms", ["chatbot.action"])
    # the callback attempt wins over email's SMTP attempt
    assert variables_for("email", ["email.send"])["attempt"].type == "integer"
    assert variables_for("email", ["email.send"])["attempt"].required


def test_sample_values() -> None:
    values = sample_values("sms", ["sms.send"])
    assert values["to"] == "+919876543210"
    assert values["sender"] == "KLRHXA"
    assert values["channel"] == "sms"
    assert values["event"] == "sms.send"
    assert values["attempt"] == 1
    assert sample_values("whatsapp", ["whatsapp.incoming"])["location"]["latitude"]


def test_catalog_document_shape() -> None:
    doc = catalog_document()
    assert isinstance(doc, list)
    assert [c["channel"] for c in doc] == ["default", "sms", "email", "whatsapp", "chatbot"]
    orjson.dumps(doc)  # serializable as is
    sms = next(c for c in doc if c["channel"] == "sms")
    assert sms["methods"] == ["GET", "POST"]
    event = sms["events"][0]
    assert event["name"] == "sms.send"
    status = next(v for v in event["variables"] if v["name"] == "status")
    assert status["example"] == "delivered"
    assert status["required"] is True
    assert "delivered" in status["allowed"]
    assert {"name", "description", "example", "type", "required"} <= set(status)
    assert {v["name"] for v in event["variables"]} >= {"event_id", "ref", "is_test"}
    default = doc[0]
    assert default["events"] == []
    assert {v["name"] for v in default["envelope_variables"]} >= {"event_id", "attempt"}
    assert set(default["encryption"]["scopes"]) == {"values", "body"}
    # a caller may change its copy without changing the next one
    doc[1]["events"].clear()
    assert catalog_document()[1]["events"]


def test_encryption_doc_snippet_decrypts() -> None:
    import base64

    from callbacks.encryption import encrypt_body, encrypt_value

    key = bytes(range(32))
    doc = encryption_document()
    source = doc["example_python"].replace(
        "<the profile's encryption key>", base64.b64encode(key).decode()
    )
    namespace: dict[str, object] = {}
    exec(compile(source, "snippet", "exec"), namespace)
    decrypt_value = namespace["decrypt_value"]
    decrypt_body = namespace["decrypt_body"]
    for alg in ("aes-256-gcm", "aes-256-cfb"):
        token = encrypt_value(alg, key, "नमस्ते".encode())
        assert decrypt_value(alg, token) == "नमस्ते"  # type: ignore[operator]
        body = encrypt_body(alg, key, b'{"a": 1}')
        assert json.loads(decrypt_body(body)) == {"a": 1}  # type: ignore[operator]
