"""Pure parts of ordering and batching: profile rules, the batch request, its id."""

from __future__ import annotations

from typing import Any

import pytest
from callbacks.models.profiles import ProfileSpec
from callbacks.request import DeliveryRequest
from callbacks.signing import generate_secret, sign
from callbacks.validation import validate_profile
from dispatcher.batch import batch_id_for, batch_request
from pydantic import ValidationError


def spec(**overrides: Any) -> ProfileSpec:
    fields: dict[str, Any] = {
        "title": "t",
        "channel": "sms",
        "events": ["sms.send"],
        "url": "https://example.com/h",
        "body_type": "json",
        "body": '{"s": "{{status}}"}',
    }
    fields.update(overrides)
    return ProfileSpec.model_validate(fields)


def fields_of(profile: ProfileSpec) -> list[str]:
    return [e.field for e in validate_profile(profile)]


@pytest.mark.parametrize("ordering", ["none", "fifo", "latest"])
def test_each_ordering_is_accepted(ordering: str) -> None:
    assert fields_of(spec(ordering=ordering)) == []


def test_an_unknown_ordering_names_the_field() -> None:
    with pytest.raises(ValidationError) as caught:
        spec(ordering="random")
    assert caught.value.errors()[0]["loc"] == ("ordering",)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"body_type": "xml", "body": "<a>{{status}}</a>"}, "batch"),
        ({"body_type": "text", "body": "{{status}}"}, "batch"),
        ({"method": "GET", "body_type": None, "body": None}, "batch"),
        ({"batch": {"max_events": 5, "max_wait": "soon"}}, "batch.max_wait"),
        ({"batch": {"max_events": 5, "max_wait": "0s"}}, "batch.max_wait"),
        ({"batch": {"max_events": 5, "max_wait": "2m"}}, "batch.max_wait"),
    ],
)
def test_batch_rules_name_the_field(overrides: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {"batch": {"max_events": 5, "max_wait": "1s"}}
    fields.update(overrides)
    assert field in fields_of(spec(**fields))


@pytest.mark.parametrize("max_events", [0, 1001, -1])
def test_max_events_is_bounded(max_events: int) -> None:
    with pytest.raises(ValidationError) as caught:
        spec(batch={"max_events": max_events, "max_wait": "1s"})
    assert caught.value.errors()[0]["loc"] == ("batch", "max_events")


def test_a_json_batch_is_valid() -> None:
    assert fields_of(spec(batch={"max_events": 1000, "max_wait": "60s"})) == []


def test_batch_id_depends_on_the_members_only() -> None:
    assert batch_id_for(["a", "b"]) == batch_id_for(["b", "a"])
    assert batch_id_for(["a", "b"]) != batch_id_for(["a", "c"])
    assert batch_id_for(["a"]).startswith("msg_")


def test_batch_request_is_an_array_signed_as_one_body() -> None:
    secret = generate_secret()
    first = DeliveryRequest(
        "POST",
        "https://example.com/h?x=1",
        (
            ("Content-Type", "application/json"),
            ("webhook-id", "msg_member"),
            ("webhook-timestamp", "1"),
            ("webhook-signature", "v1,member"),
        ),
        b'{"a": 1}',
    )
    request = batch_request(
        first,
        [b'{"a": 1}', b'{"b": "\\"<&"}'],
        batch_id="msg_batch",
        timestamp=1700000000,
        signing_secrets=[secret],
    )
    assert request.body == b'[{"a": 1},{"b": "\\"<&"}]'
    headers = dict(request.headers)
    assert headers["webhook-id"] == "msg_batch"
    assert [n for n, _ in request.headers].count("webhook-signature") == 1
    assert headers["webhook-signature"] == sign(secret, "msg_batch", 1700000000, request.body)
    assert (request.method, request.url) == ("POST", first.url)
