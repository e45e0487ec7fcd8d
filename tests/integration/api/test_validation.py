"""Every save-time rule (contract §3, §4) answered as a 422 problem naming the field.

Table-driven: each row is a change to a valid profile and the field the problem must
name. The same table is run through POST (create) and PUT (whole update).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.api.helpers import Api, sms_profile

PROFILES = "/v1/callback-profiles"
NO_AUTH = {"authentication": {"type": "none"}}

CASES: list[tuple[str, dict[str, Any], str]] = [
    ("title empty", {"title": ""}, "title"),
    ("title blank", {"title": "   "}, "title"),
    ("title too long", {"title": "x" * 201}, "title"),
    ("unknown channel", {"channel": "fax"}, "channel"),
    ("event of another channel", {"events": ["email.send"]}, "events"),
    ("unknown event", {"events": ["sms.nope"]}, "events"),
    ("no event on sms", {"events": []}, "events"),
    ("events on default", {"channel": "default", "events": ["sms.send"]}, "events"),
    ("PUT outside chatbot", {"method": "PUT"}, "method"),
    ("DELETE outside chatbot", {"method": "DELETE", "body": None, "body_type": None}, "method"),
    ("unknown method", {"method": "PATCH"}, "method"),
    ("GET with a body", {"method": "GET"}, "body"),
    ("body without body_type", {"body_type": None}, "body_type"),
    ("unknown body_type", {"body_type": "yaml"}, "body_type"),
    ("JSON body that does not parse", {"body": '{"id": {{message_id}'}, "body"),
    (
        "XML body not well-formed",
        {"body_type": "xml", "body": "<a><b>{{status}}</a>"},
        "body",
    ),
    ("unknown variable in body", {"body": '{"x": "{{nope}}"}'}, "body"),
    ("unknown variable in query", {"query_params": {"q": "{{nope}}"}}, "query_params.q"),
    ("unknown variable in header", {"headers": {"X-A": "{{nope}}"}}, "headers.X-A"),
    ("unknown variable in url", {"url": "https://example.com/{{nope}}"}, "url"),
    ("relative url", {"url": "/hooks"}, "url"),
    ("ftp url", {"url": "ftp://example.com/x"}, "url"),
    (
        "encryption without key",
        {"encryption": {"enabled": True, "algorithm": "aes-256-gcm"}},
        "encryption.key",
    ),
    (
        "key length does not match algorithm",
        {"encryption": {"enabled": True, "algorithm": "aes-128-gcm", "key": "A" * 44}},
        "encryption.key",
    ),
    (
        "unknown algorithm",
        {"encryption": {"enabled": True, "algorithm": "rot13", "key": "A" * 44}},
        "encryption.algorithm",
    ),
    (
        "basic without password",
        {"authentication": {"type": "basic", "username": "u"}},
        "authentication.password",
    ),
    ("bearer without token", {"authentication": {"type": "bearer"}}, "authentication.token"),
    (
        "oauth2 without client secret",
        {
            "authentication": {
                "type": "oauth2_client_credentials",
                "token_url": "https://auth.example.com/token",
                "client_id": "c",
            }
        },
        "authentication.client_secret",
    ),
    ("unknown auth type", {"authentication": {"type": "digest"}}, "authentication.type"),
    (
        "required variable not of the event",
        {"required_options": {"enabled": True, "variables": ["subject"]}},
        "required_options.variables",
    ),
    (
        "filter on a variable not of the channel",
        {
            "filters": [
                {"variable": "status", "in": ["failed"]},
                {"variable": "subject", "exists": True},
            ]
        },
        "filters.1.variable",
    ),
    (
        "filter with two operators",
        {"filters": [{"variable": "status", "in": ["failed"], "equals": "failed"}]},
        "filters.0",
    ),
    (
        "filter with an empty list",
        {"filters": [{"variable": "status", "not_in": []}]},
        "filters.0.not_in",
    ),
    ("bad retry_on", {"retry_on": "sometimes"}, "retry_on"),
    ("bad max_age", {"max_age": "soon"}, "max_age"),
    ("form body without form_fields", {"body_type": "form", "body": None}, "form_fields"),
    ("events not a list", {"events": "sms.send"}, "events"),
    ("headers not strings", {"headers": {"X-A": 1}}, "headers.X-A"),
]


@pytest.mark.parametrize(
    ("change", "field"), [(c, f) for _, c, f in CASES], ids=[n for n, _, _ in CASES]
)
async def test_rule_is_enforced_on_create_and_update(
    api: Api, change: dict[str, Any], field: str
) -> None:
    body = sms_profile(**change)
    created = await api.call("POST", PROFILES, json=body)
    assert created.status == 422, created.body
    assert created.headers["Content-Type"].startswith("application/problem+json")
    problem = created.body
    assert problem["status"] == 422
    assert problem["type"] != "about:blank"
    assert problem["title"]
    assert field in problem["detail"]
    assert field in [e["field"] for e in problem["errors"]], problem["errors"]
    assert all(e["message"] for e in problem["errors"])

    saved = await api.call("POST", PROFILES, json=sms_profile())
    assert saved.status == 201
    replaced = await api.call("PUT", f"{PROFILES}/{saved.body['id']}", json=body)
    assert replaced.status == 422
    assert field in [e["field"] for e in replaced.body["errors"]]


async def test_unknown_variable_error_lists_the_valid_ones(api: Api) -> None:
    reply = await api.call("POST", PROFILES, json=sms_profile(body='{"x": "{{nope}}"}'))
    [error] = [e for e in reply.body["errors"] if e["field"] == "body"]
    assert "nope" in error["message"]
    for valid in ("message_id", "status", "event_id", "attempt"):
        assert valid in error["message"]


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {
            "channel": "default",
            "events": [],
            "body": '{"e": "{{event}}"}',
            "query_params": {},
            "required_options": {"enabled": True, "variables": ["event_id"]},
        },
        {
            "channel": "default",
            "events": [],
            "body": None,
            "body_type": None,
            "query_params": {},
            "method": "GET",
            "required_options": {"enabled": False, "variables": []},
        },
        {
            "channel": "chatbot",
            "events": ["chatbot.action"],
            "method": "PUT",
            "body": '{"s": "{{session_id}}"}',
            "query_params": {},
            "required_options": {"enabled": True, "variables": ["session_id"]},
        },
        {
            "channel": "chatbot",
            "events": ["chatbot.action"],
            "method": "DELETE",
            "body": None,
            "body_type": None,
            "query_params": {},
            "required_options": {"enabled": False},
        },
        {"body_type": "xml", "body": '<m id="{{message_id}}">{{status}}</m>'},
        {"body_type": "text", "body": "{{status}} for {{to}}"},
        {"body_type": "form", "body": None, "form_fields": {"id": "{{message_id}}"}},
        {"authentication": {"type": "bearer", "token": "t"}},
        {"encryption": {"enabled": False}, **NO_AUTH},
        {"max_age": "2h", "retry_on": "transient_only"},
    ],
)
async def test_valid_profiles_are_accepted(api: Api, overrides: dict[str, Any]) -> None:
    reply = await api.call("POST", PROFILES, json=sms_profile(**overrides))
    assert reply.status == 201, reply.body
