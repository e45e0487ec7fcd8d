import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from callbacks.catalog import sample_values
from callbacks.models.profiles import ProfileRecord, ProfileSpec
from callbacks.request import build_request
from callbacks.validation import (
    MAX_FORM_FIELDS,
    MAX_FORM_VALUE_CHARS,
    MAX_HEADER_NAME_CHARS,
    MAX_HEADER_VALUE_CHARS,
    MAX_HEADERS,
    MAX_PROFILE_BYTES,
    MAX_QUERY_PARAMS,
    MAX_QUERY_VALUE_CHARS,
    MAX_SECRET_CHARS,
    FieldError,
    validate_profile,
)
from pydantic import ValidationError

KEY32 = base64.b64encode(b"k" * 32).decode()
KEY16 = base64.b64encode(b"k" * 16).decode()
NOW = datetime(2026, 11, 24, tzinfo=UTC)


def spec(**overrides: Any) -> ProfileSpec:
    fields: dict[str, Any] = {
        "title": "Order SMS status",
        "channel": "sms",
        "events": ["sms.send"],
        "method": "POST",
        "url": "https://example.com/hooks/sms?src=kaleyra",
        "headers": {"X-Api-Key": "abc", "Content-Type": "application/json"},
        "query_params": {"msg": "{{message_id}}"},
        "body_type": "json",
        "body": '{"id": "{{message_id}}", "status": "{{status}}", "to": "{{to}}"}',
        "encryption": {"enabled": True, "algorithm": "aes-256-gcm", "key": KEY32},
        "authentication": {"type": "basic", "username": "u", "password": "p"},
        "required_options": {"enabled": True, "variables": ["message_id", "status"]},
    }
    if overrides.get("channel", "sms") != "sms":
        fields.update(query_params={}, required_options={})
    fields.update(overrides)
    return ProfileSpec.model_validate(fields)


def fields_of(errors: list[FieldError]) -> list[str]:
    return [e.field for e in errors]


def test_contract_example_is_valid() -> None:
    assert validate_profile(spec()) == []


@pytest.mark.parametrize(
    "overrides",
    [
        {"channel": "default", "events": [], "body": '{"e": "{{event}}", "a": {{attempt}}}'},
        {"channel": "default", "events": [], "body": None, "body_type": None,
         "required_options": {"enabled": True, "variables": ["ref"]}},
        {"channel": "chatbot", "events": ["chatbot.action"], "method": "PUT",
         "body": '{"s": "{{session_id}}", "slots": {{slots}}}', "required_options": {}},
        {"channel": "chatbot", "events": ["chatbot.action"], "method": "DELETE", "body": None,
         "body_type": None, "url": "https://bot.example.in/sessions/{{session_id}}",
         "required_options": {}},
        {"method": "GET", "body": None, "body_type": None,
         "url": "https://example.com/{{to}}/x?s={{status}}&ref={{ref}}"},
        {"channel": "whatsapp", "events": ["whatsapp.status", "whatsapp.incoming"],
         "body": '{"loc": {{location}}, "lat": "{{location.latitude}}", "c": {{contacts[0].name}}}',
         "required_options": {}},
        {"body_type": "xml",
         "body": "<sms id='{{message_id}}'><to>{{to}}</to><r>{{ref}}</r></sms>"},
        {"body_type": "html", "body": "<p>{{status}}<br></p>"},
        {"body_type": "text", "body": "{{to}} is {{status}}"},
        {"body_type": "form", "body": None,
         "form_fields": {"status": "{{status}}", "to": "{{to}}"}},
        {"encryption": {"enabled": True, "algorithm": "aes-128-cfb", "key": KEY16}},
        {"encryption": {"enabled": False, "key": "not base64"}},
        {"authentication": {"type": "bearer", "token": "t0k"}},
        {"authentication": {"type": "oauth2_client_credentials", "token_url": "https://auth.example.in/token",
                            "client_id": "c", "client_secret": "s"}},
        {"max_age": "2h"},
        {"body": None, "body_type": None},
        {"headers": {"X-Msg": "{{message_id}}", "Authorization": "Key x"}, "authentication": {}},
    ],
)  # fmt: skip
def test_valid(overrides: dict[str, Any]) -> None:
    profile = spec(**overrides)
    assert validate_profile(profile) == []
    # What validation accepts, the request builder renders.
    record = ProfileRecord.model_validate(
        {**profile.model_dump(), "id": "p", "account_id": "a", "created_at": NOW,
         "updated_at": NOW}
    )  # fmt: skip
    variables = sample_values(profile.channel, profile.events)
    request = build_request(
        record, variables, delivery_id="d", timestamp=1, signing_secrets=[], auth_header=None
    )
    assert request.url.startswith("https://")
    if profile.body_type == "json" and request.body:
        json.loads(request.body)


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"channel": "default"}, "events", "leave events empty"),
        ({"events": []}, "events", "at least one event"),
        ({"events": ["email.send"]}, "events", "valid events: sms.send"),
        ({"events": ["sms.send", "sms.send"]}, "events", "twice"),
        ({"method": "PUT"}, "method", "PUT is not allowed on sms"),
        ({"method": "DELETE", "body": None, "body_type": None}, "method", "not allowed"),
        ({"method": "GET"}, "body", "no body"),
        ({"channel": "chatbot", "events": ["chatbot.action"], "method": "PUT", "body_type": "xml",
          "body": "<a/>", "required_options": {}}, "body_type", "JSON"),
        ({"body_type": None}, "body_type", "required with a body"),
        ({"body_type": "form"}, "body", "use form_fields"),
        ({"body_type": "form", "body": None}, "form_fields", "required with body_type form"),
        ({"form_fields": {"a": "b"}}, "form_fields", "need body_type form"),
        ({"body": '{"id": "{{foo}}"}'}, "body", "unknown variable 'foo'; valid variables: "),
        ({"body": '{"id": {{message_id}'}, "body", "unclosed"),
        ({"body": '{"id": {{message_id}}'}, "body", "not valid JSON"),
        ({"body": '{"id": "{{message_id}}",}'}, "body", "not valid JSON"),
        ({"body_type": "xml", "body": "<a>{{to}}</b>"}, "body", "not well-formed XML"),
        ({"body_type": "xml", "body": '<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'}, "body", "DTD"),
        ({"headers": {"X-Id": "{{nope}}"}}, "headers.X-Id", "unknown variable 'nope'"),
        ({"headers": {"Bad Name": "x"}}, "headers.Bad Name", "not a valid header name"),
        ({"headers": {"webhook-signature": "x"}}, "headers.webhook-signature",
         "set by the platform"),
        ({"headers": {"Authorization": "x"}}, "headers.Authorization", "remove one"),
        ({"query_params": {"msg": "{{msg}}"}}, "query_params.msg", "unknown variable 'msg'"),
        ({"url": "https://{{to}}.example.com/x"}, "url", "only in the path and query"),
        ({"url": "https://example.com/{{nope}}"}, "url", "unknown variable 'nope'"),
        ({"body_type": "form", "body": None, "form_fields": {"status": "{{stat}}"}},
         "form_fields.status", "unknown variable 'stat'"),
        ({"encryption": {"enabled": True}}, "encryption.key", "required"),
        ({"encryption": {"enabled": True, "key": "%%%"}}, "encryption.key", "base64"),
        ({"encryption": {"enabled": True, "algorithm": "aes-128-gcm", "key": KEY32}},
         "encryption.key", "16-byte key; this one has 32 bytes"),
        ({"authentication": {"type": "basic", "username": "u"}}, "authentication.password",
         "required"),
        ({"authentication": {"type": "basic", "username": "a:b", "password": "p"}},
         "authentication.username", "':'"),
        ({"authentication": {"type": "bearer"}}, "authentication.token", "required"),
        ({"authentication": {"type": "bearer", "token": "a\r\nX: y"}}, "authentication.token",
         "CR"),
        ({"authentication": {"type": "oauth2_client_credentials", "token_url": "ftp://x",
                             "client_id": "c", "client_secret": "s"}},
         "authentication.token_url", "absolute http(s)"),
        ({"authentication": {"type": "oauth2_client_credentials"}}, "authentication.client_id",
         "required"),
        ({"required_options": {"enabled": True}}, "required_options.variables", "at least one"),
        ({"required_options": {"enabled": True, "variables": ["wamid"]}},
         "required_options.variables", "unknown variable 'wamid'"),
        ({"max_age": "soon"}, "max_age", "invalid duration"),
        ({"max_age": "0s"}, "max_age", "greater than zero"),
    ],
)  # fmt: skip
def test_invalid(overrides: dict[str, Any], field: str, message: str) -> None:
    errors = validate_profile(spec(**overrides))
    assert field in fields_of(errors), errors
    assert any(message in e.message for e in errors if e.field == field), errors


def test_unknown_variable_lists_the_valid_ones_sorted() -> None:
    errors = validate_profile(spec(body='{"a": "{{foo}}"}'))
    assert len(errors) == 1
    listed = errors[0].message.split("valid variables: ")[1].split(", ")
    assert listed == sorted(listed)
    assert {"message_id", "dlr_status", "event_id", "attempt", "is_test"} <= set(listed)


def test_default_channel_has_only_envelope_variables() -> None:
    errors = validate_profile(
        spec(channel="default", events=[], query_params={"msg": "{{message_id}}"})
    )
    assert fields_of(errors) == ["query_params.msg", "body", "body", "body"]


def test_every_error_is_reported_at_once() -> None:
    errors = validate_profile(
        spec(method="PUT", max_age="x", authentication={"type": "bearer"}, headers={"A": "{{z}}"})
    )
    assert set(fields_of(errors)) >= {"method", "max_age", "authentication.token", "headers.A"}


OAUTH = {"type": "oauth2_client_credentials", "token_url": "https://auth.example.in/token",
         "client_id": "c", "client_secret": "s"}  # fmt: skip


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"authentication": {"type": "basic", "username": "u", "password": "p" * 790_000}},
         "authentication.password"),
        ({"authentication": {"type": "bearer", "token": "t" * (MAX_SECRET_CHARS + 1)}},
         "authentication.token"),
        ({"authentication": {**OAUTH, "client_secret": "s" * (MAX_SECRET_CHARS + 1)}},
         "authentication.client_secret"),
        ({"authentication": {**OAUTH, "client_id": "c" * 1025}}, "authentication.client_id"),
        ({"authentication": {**OAUTH, "token_url": "https://a.in/" + "t" * 2048}},
         "authentication.token_url"),
        ({"encryption": {"enabled": True, "key": "A" * (MAX_SECRET_CHARS + 4)}},
         "encryption.key"),
        ({"headers": {f"X-H{i}": "v" for i in range(MAX_HEADERS + 1)}}, "headers"),
        ({"headers": {"X-" + "n" * MAX_HEADER_NAME_CHARS: "v"}}, "headers"),
        ({"headers": {"X-Long": "v" * (MAX_HEADER_VALUE_CHARS + 1)}}, "headers.X-Long"),
        ({"headers": {"X-Api-Key": "k" * (MAX_HEADER_VALUE_CHARS + 1)}}, "headers.X-Api-Key"),
        ({"query_params": {f"q{i}": "v" for i in range(MAX_QUERY_PARAMS + 1)}}, "query_params"),
        ({"query_params": {"q": "v" * (MAX_QUERY_VALUE_CHARS + 1)}}, "query_params.q"),
        ({"body_type": "form", "body": None,
          "form_fields": {f"f{i}": "v" for i in range(MAX_FORM_FIELDS + 1)}}, "form_fields"),
        ({"body_type": "form", "body": None,
          "form_fields": {"f": "v" * (MAX_FORM_VALUE_CHARS + 1)}}, "form_fields.f"),
        ({"required_options": {"enabled": True, "variables": ["status"] * 101}},
         "required_options.variables"),
    ],
)  # fmt: skip
def test_sizes_beyond_their_limits_name_the_field(overrides: dict[str, Any], field: str) -> None:
    errors = validate_profile(spec(**overrides))
    assert field in fields_of(errors), errors
    assert any("at most" in e.message for e in errors if e.field == field), errors


def test_the_largest_profile_that_saves_fits_one_topic_message_sealed() -> None:
    """Credential headers and query values at their maximum (sealing grows the headers
    by a third) and a body filling the rest of the whole-profile cap: sealed, it fits
    the broker's default 1 MiB message."""
    import os

    from callbacks.models.profiles import seal_secrets
    from callbacks.secretbox import SecretBox

    fields: dict[str, Any] = {
        "title": "t" * 200,
        "headers": {f"X-Key-{i:02}": "k" * MAX_HEADER_VALUE_CHARS for i in range(MAX_HEADERS)},
        "query_params": {f"q{i:02}": "q" * MAX_QUERY_VALUE_CHARS for i in range(MAX_QUERY_PARAMS)},
        "authentication": {"type": "basic", "username": "u", "password": "p" * MAX_SECRET_CHARS},
        "body": "{}",
    }
    room = MAX_PROFILE_BYTES - len(spec(**fields).model_dump_json()) - 16
    fields["body"] = json.dumps({"a": "x" * room})
    big = spec(**fields)
    assert MAX_PROFILE_BYTES - 32 < len(big.model_dump_json()) <= MAX_PROFILE_BYTES
    assert validate_profile(big) == []
    record = ProfileRecord.model_validate(
        {**big.model_dump(), "id": "p", "account_id": "a", "created_at": NOW, "updated_at": NOW}
    )
    sealed = seal_secrets(record, SecretBox(os.urandom(32)).seal)
    assert len(sealed.model_dump_json()) < 1024 * 1024


def test_a_profile_over_the_whole_size_cap_is_refused() -> None:
    errors = validate_profile(
        spec(
            headers={f"X-H{i:02}": '"' * MAX_HEADER_VALUE_CHARS for i in range(MAX_HEADERS)},
            body=json.dumps({"a": '"' * (120 * 1024)}),
        )
    )
    assert fields_of(errors) == ["body"]
    assert f"at most {MAX_PROFILE_BYTES}" in errors[0].message


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "http://example.com/hooks"}, "url"),
        ({"authentication": {**OAUTH, "token_url": "http://auth.example.in/token"}},
         "authentication.token_url"),
    ],
)  # fmt: skip
def test_production_mode_wants_https(overrides: dict[str, Any], field: str) -> None:
    errors = validate_profile(spec(**overrides))
    assert fields_of(errors) == [field]
    assert "https" in errors[0].message
    assert validate_profile(spec(**overrides), allow_plain_http=True) == []


@pytest.mark.parametrize("title", ["a\r\nBcc: x@example.com", "tab\there", "bell\x07", "c1\x85"])
def test_titles_with_control_characters_are_refused(title: str) -> None:
    with pytest.raises(ValidationError, match="control characters"):
        spec(title=title)


@pytest.mark.parametrize("name", ["username", "client_id", "scope"])
def test_control_characters_in_auth_text_are_refused(name: str) -> None:
    errors = validate_profile(spec(authentication={**OAUTH, name: "a\x01b"}))
    assert f"authentication.{name}" in fields_of(errors)
