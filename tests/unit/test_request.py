import base64
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

import pytest
from callbacks.encryption import decrypt_body, decrypt_value
from callbacks.models.profiles import ProfileRecord
from callbacks.request import (
    USER_AGENT,
    DeliveryRequest,
    RequestBuildError,
    build_request,
    static_auth_header,
)
from callbacks.signing import generate_secret
from callbacks.templates import compile_template
from standardwebhooks.webhooks import Webhook

KEY = b"k" * 32
SECRET = generate_secret()
NOW = datetime(2026, 11, 24, 10, tzinfo=UTC)
VARIABLES: dict[str, Any] = {
    "message_id": "ee8a30d:1",
    "to": "+919876543210",
    "status": "delivered",
    "text": 'नमस्ते "quoted" <b>&amp;</b> 👍\nline2',
    "units": 2,
    "is_test": False,
    "custom": {"order_id": "123"},
    "ref": None,
}


def profile(**overrides: Any) -> ProfileRecord:
    fields: dict[str, Any] = {
        "id": "prof-1",
        "account_id": "acc-1",
        "created_at": NOW,
        "updated_at": NOW,
        "title": "Order SMS status",
        "channel": "sms",
        "events": ["sms.send"],
        "method": "POST",
        "url": "https://example.com/hooks/sms?src=kaleyra",
        "headers": {"X-Api-Key": "abc"},
        "query_params": {"msg": "{{message_id}}"},
        "body_type": "json",
        "body": '{"id": "{{message_id}}", "status": "{{status}}", "units": {{units}}, '
        '"text": "{{text}}", "custom": {{custom}}, "ref": {{ref}}}',
    }
    fields.update(overrides)
    return ProfileRecord.model_validate(fields)


def build(record: ProfileRecord, **kwargs: Any) -> DeliveryRequest:
    options: dict[str, Any] = {
        "delivery_id": "dlv_1",
        "timestamp": int(time.time()),
        "signing_secrets": [SECRET],
        "auth_header": static_auth_header(record),
    }
    options.update(kwargs)
    return build_request(record, VARIABLES, **options)


def verify(request: DeliveryRequest, secret: str = SECRET) -> None:
    Webhook(secret).verify(request.body or b"", dict(request.headers), json_parse=False)


def test_json_post() -> None:
    request = build(profile())
    assert request.method == "POST"
    assert request.url == "https://example.com/hooks/sms?src=kaleyra&msg=ee8a30d%3A1"
    assert request.body is not None
    assert json.loads(request.body) == {
        "id": "ee8a30d:1",
        "status": "delivered",
        "units": 2,
        "text": VARIABLES["text"],
        "custom": {"order_id": "123"},
        "ref": None,
    }
    headers = dict(request.headers)
    assert [name for name, _ in request.headers] == [
        "X-Api-Key", "Content-Type", "User-Agent", "webhook-id", "webhook-timestamp",
        "webhook-signature",
    ]  # fmt: skip
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == USER_AGENT
    assert headers["webhook-id"] == "dlv_1"
    verify(request)


@pytest.mark.parametrize(
    ("body_type", "body", "content_type", "expected"),
    [
        ("xml", "<m><t>{{text}}</t></m>", "application/xml; charset=utf-8",
         "<m><t>नमस्ते &quot;quoted&quot; &lt;b&gt;&amp;amp;&lt;/b&gt; 👍\nline2</t></m>"),
        ("html", "<p>{{status}}</p>", "text/html; charset=utf-8", "<p>delivered</p>"),
        ("text", "{{to}}: {{text}}", "text/plain; charset=utf-8",
         f"+919876543210: {VARIABLES['text']}"),
    ],
)  # fmt: skip
def test_other_body_types(body_type: str, body: str, content_type: str, expected: str) -> None:
    request = build(profile(body_type=body_type, body=body))
    assert request.body == expected.encode()
    assert dict(request.headers)["Content-Type"] == content_type
    verify(request)


def test_form() -> None:
    record = profile(body_type="form", body=None, form_fields={"s": "{{status}}", "t": "{{text}}"})
    request = build(record)
    assert request.body is not None
    assert parse_qs(request.body.decode()) == {"s": ["delivered"], "t": [VARIABLES["text"]]}
    assert (
        dict(request.headers)["Content-Type"] == "application/x-www-form-urlencoded; charset=utf-8"
    )
    verify(request)


def test_profile_content_type_is_kept() -> None:
    record = profile(headers={"Content-Type": "application/vnd.kaleyra+json"})
    headers = build(record).headers
    assert [v for k, v in headers if k.lower() == "content-type"] == [
        "application/vnd.kaleyra+json"
    ]


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_bodyless_methods(method: str) -> None:
    record = profile(
        channel="chatbot",
        method=method,
        body=None,
        body_type=None,
        url="https://bot.example.in/s/{{to}}/{{text}}?x=1",
    )
    request = build(record)
    assert request.body is None
    assert "Content-Type" not in dict(request.headers)
    path = urlsplit(request.url).path
    assert [unquote(p) for p in path.split("/")[2:]] == ["+919876543210", VARIABLES["text"]]
    assert "/" not in path.split("/s/")[1].replace("%2F", "").split("/", 1)[1]
    verify(request)


def test_url_query_values_are_escaped() -> None:
    record = profile(url="https://example.com/h?t={{text}}", query_params={"a b": "{{status}}&x"})
    query = urlsplit(build(record).url).query
    assert parse_qsl(query) == [("t", VARIABLES["text"]), ("a b", "delivered&x")]


def test_auth_headers() -> None:
    basic = profile(authentication={"type": "basic", "username": "u", "password": "p:ä"})
    assert static_auth_header(basic) == "Basic " + base64.b64encode("u:p:ä".encode()).decode()
    bearer = profile(authentication={"type": "bearer", "token": "t0k"})
    assert dict(build(bearer).headers)["Authorization"] == "Bearer t0k"
    oauth = profile(authentication={"type": "oauth2_client_credentials"})
    assert static_auth_header(oauth) is None
    assert static_auth_header(profile()) is None
    request = build(profile(headers={"Authorization": "mine"}), auth_header="Bearer from-cache")
    assert [v for k, v in request.headers if k.lower() == "authorization"] == ["Bearer from-cache"]


def test_reserved_headers_of_a_profile_are_ignored() -> None:
    record = profile(headers={"webhook-id": "forged", "User-Agent": "x"})
    headers = build(record).headers
    assert [v for k, v in headers if k.lower() == "webhook-id"] == ["dlv_1"]
    assert [v for k, v in headers if k.lower() == "user-agent"] == [USER_AGENT]


@pytest.mark.parametrize("value", ["a\r\nX-Evil: 1", "a\nb"])
def test_header_injection(value: str) -> None:
    record = profile(headers={"X-Text": "{{text}}"})
    with pytest.raises(RequestBuildError) as info:
        build_request(
            record, {**VARIABLES, "text": value}, delivery_id="d", timestamp=1,
            signing_secrets=[SECRET], auth_header=None,
        )  # fmt: skip
    assert info.value.reason == "header_injection:X-Text"


@pytest.mark.parametrize("algorithm", ["aes-256-gcm", "aes-128-cfb"])
def test_encrypted_values_everywhere(algorithm: str) -> None:
    key = KEY[: 16 if "128" in algorithm else 32]
    encryption = {"enabled": True, "algorithm": algorithm, "key": base64.b64encode(key).decode()}
    record = profile(
        encryption=encryption,
        url="https://example.com/h/{{to}}?s={{status}}",
        headers={"X-To": "{{to}}"},
    )
    request = build(record)

    def clear(token: str) -> str:
        return decrypt_value(algorithm, key, token).decode()

    url = urlsplit(request.url)
    assert clear(unquote(url.path.rsplit("/", 1)[1])) == "+919876543210"
    query = dict(parse_qsl(url.query))
    assert clear(query["s"]) == "delivered"
    assert clear(query["msg"]) == "ee8a30d:1"
    assert clear(dict(request.headers)["X-To"]) == "+919876543210"
    assert request.body is not None
    body = json.loads(request.body)
    assert clear(body["text"]) == VARIABLES["text"]
    assert clear(body["units"]) == "2"
    assert json.loads(clear(body["custom"])) == {"order_id": "123"}
    assert body["ref"] is None
    verify(request)


def test_encrypted_body() -> None:
    encryption = {"enabled": True, "scope": "body", "key": base64.b64encode(KEY).decode()}
    record = profile(encryption=encryption, headers={"Content-Type": "text/plain"})
    request = build(record)
    assert [v for k, v in request.headers if k.lower() == "content-type"] == ["application/json"]
    assert request.body is not None
    envelope = json.loads(request.body)
    assert envelope["alg"] == "aes-256-gcm"
    plain = json.loads(decrypt_body("aes-256-gcm", KEY, envelope))
    assert plain["text"] == VARIABLES["text"]
    assert urlsplit(request.url).query == "src=kaleyra&msg=ee8a30d%3A1"  # values in clear
    verify(request)


def test_rotation_signs_with_both_secrets() -> None:
    old = generate_secret()
    request = build(profile(), signing_secrets=[SECRET, old])
    assert len(dict(request.headers)["webhook-signature"].split(" ")) == 2
    verify(request, SECRET)
    verify(request, old)


def test_bad_encryption_key() -> None:
    record = profile(encryption={"enabled": True, "key": base64.b64encode(b"short").decode()})
    with pytest.raises(RequestBuildError, match="invalid_encryption_key"):
        build(record)


def test_same_input_same_request() -> None:
    assert build(profile(), timestamp=1) == build(profile(), timestamp=1)


def test_templates_are_parsed_once() -> None:
    # Nothing silly on the hot path: a second build parses nothing again.
    record = profile(body='{"fresh": "{{status}}"}')
    build(record)
    misses = compile_template.cache_info().misses
    for _ in range(10):
        build(record)
    assert compile_template.cache_info().misses == misses
