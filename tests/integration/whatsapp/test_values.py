"""Nested and list values, missing optional fields, and GET profiles that list every
variable of their event (contract §4, issue 8)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson
import pytest
from callbacks.catalog import EVENTS, variables_for
from callbacks.settings import Settings
from callbacks_dev.simulator.events import Gateway, GatewayEvent

from tests.integration.dispatcher.helpers import drain, metric, publish_profiles
from tests.integration.whatsapp.helpers import RawSink, event, produce, profile

pytestmark = pytest.mark.integration

LOCATION: dict[str, Any] = {
    "latitude": 28.6129,
    "longitude": 77.2295,
    "name": "इंडिया गेट 🇮🇳",
    "address": 'Kartavya Path, "Rajpath" & <Central> Delhi',
}
CONTACTS: list[dict[str, Any]] = [
    {
        "name": {"formatted_name": "राहुल वर्मा", "first_name": "Rahul"},
        "phones": [{"phone": "+919812345678", "type": "CELL"}],
    },
    {"name": {"formatted_name": "Ananya 🌸"}, "phones": []},
]


def compact(value: Any) -> str:
    return orjson.dumps(value).decode()


async def test_objects_and_lists_alone_as_json_and_as_text_everywhere_else(
    topics: Settings, sink: RawSink, gateway: Gateway
) -> None:
    json_body = profile(
        sink,
        "/json",
        "whatsapp",
        ["whatsapp.incoming"],
        body_type="json",
        body='{"lat": {{location.latitude}}, "lat_text": "{{location.latitude}}", '
        '"place": "{{location.name}}", "location": {{location}}, '
        '"said": "at {{location}}", "contact": {{contacts[0].name}}, '
        '"contact_name": "{{contacts[0].name.formatted_name}}", '
        '"phone": "{{contacts[0].phones[0].phone}}", "contacts": {{contacts}}, '
        '"second": {{contacts[1].name.formatted_name}}, "beyond": {{contacts[5].name}}}',
    )
    xml_body = profile(
        sink,
        "/xml",
        "whatsapp",
        ["whatsapp.incoming"],
        body_type="xml",
        body='<m lat="{{location.latitude}}"><loc>{{location}}</loc>'
        "<c>{{contacts}}</c><n>{{contacts[0].name.formatted_name}}</n></m>",
    )
    url_and_header = profile(
        sink,
        "",
        "whatsapp",
        ["whatsapp.incoming"],
        method="GET",
        url=sink.url("/get/{{location.name}}?lat={{location.latitude}}"),
        query_params={"loc": "{{location}}", "contacts": "{{contacts}}"},
        headers={
            "X-Location": "{{location.latitude}},{{location.longitude}}",
            "X-Contact": "{{contacts[0].phones}}",
        },
    )
    await publish_profiles(topics, json_body, xml_body, url_and_header)
    data = {"type": "location", "location": LOCATION, "contacts": CONTACTS}
    events = [
        event(gateway, p, "whatsapp.incoming", data) for p in (json_body, xml_body, url_and_header)
    ]
    await produce(topics, events)
    await drain(topics)

    [got] = sink.at("/json")
    assert json.loads(got.body) == {
        "lat": 28.6129,
        "lat_text": "28.6129",
        "place": "इंडिया गेट 🇮🇳",
        "location": LOCATION,
        "said": "at " + compact(LOCATION),
        "contact": CONTACTS[0]["name"],
        "contact_name": "राहुल वर्मा",
        "phone": "+919812345678",
        "contacts": CONTACTS,
        "second": "Ananya 🌸",
        "beyond": None,
    }

    [got] = sink.at("/xml")
    root = ET.fromstring(got.body)
    assert root.get("lat") == "28.6129"
    assert root.findtext("loc") == compact(LOCATION)
    assert root.findtext("c") == compact(CONTACTS)
    assert root.findtext("n") == "राहुल वर्मा"

    [got] = [r for r in sink.received if r.path.startswith("/get/")]
    assert got.path == "/get/" + LOCATION["name"]
    target = sink.raw_targets[got.header("webhook-id") or ""]
    assert target.startswith("/get/%E0%A4%87")  # the path segment, percent-encoded too
    raw = sink.raw_query(got)
    assert re.fullmatch(r"[A-Za-z0-9_.~%&=-]*", raw), raw
    query = parse_qs(raw, keep_blank_values=True)
    assert query == {
        "lat": ["28.6129"],
        "loc": [compact(LOCATION)],
        "contacts": [compact(CONTACTS)],
    }
    assert got.header("X-Location") == "28.6129,77.2295"
    assert json.loads(got.header("X-Contact") or "") == CONTACTS[0]["phones"]


async def test_a_missing_optional_field_is_null_alone_and_empty_inside(
    topics: Settings, sink: RawSink, gateway: Gateway
) -> None:
    json_body = profile(
        sink,
        "/json",
        "whatsapp",
        ["whatsapp.incoming"],
        body_type="json",
        body='{"name": {{name}}, "hello": "hi {{name}}!", "media": {{media_url}}, '
        '"text": "{{body}}", "lat": {{location.latitude}}, "contact": {{contacts[0]}}}',
    )
    get_query = profile(
        sink,
        "/get",
        "whatsapp",
        ["whatsapp.incoming"],
        method="GET",
        query_params={"name": "{{name}}", "body": "{{body}}", "lat": "{{location.latitude}}"},
        headers={"X-Name": "<{{name}}>"},
    )
    xml_body = profile(
        sink,
        "/xml",
        "whatsapp",
        ["whatsapp.incoming"],
        body_type="xml",
        body="<n a='{{name}}'>{{body}}</n>",
    )
    await publish_profiles(topics, json_body, get_query, xml_body)
    # ``name`` is null, ``body`` and ``media_url`` are absent, ``location`` is empty.
    overrides: dict[str, Any] = {"name": None, "type": "text", "location": {}}
    events = [
        event(gateway, p, "whatsapp.incoming", overrides, drop=("body", "media_url"))
        for p in (json_body, get_query, xml_body)
    ]
    await produce(topics, events)
    await drain(topics)

    [got] = sink.at("/json")
    assert json.loads(got.body) == {
        "name": None,
        "hello": "hi !",
        "media": None,
        "text": "",
        "lat": None,
        "contact": None,
    }
    [got] = sink.at("/get")
    assert parse_qs(got.query_string, keep_blank_values=True) == {
        "name": [""],
        "body": [""],
        "lat": [""],
    }
    assert got.header("X-Name") == "<>"
    [got] = sink.at("/xml")
    assert got.body == b"<n a=''></n>"


def _full_event(gateway: Gateway, name: str, extra: dict[str, Any]) -> dict[str, Any]:
    """Every data field of ``name`` present: the builder's values, the catalog's
    examples for the rest, then ``extra``."""
    built = gateway.event(name)
    examples = {f.name: f.example for f in EVENTS[name].fields}
    return {**examples, **built.data, **extra}


UNICODE = 'प्रिया & "राहुल" 🌸 a+b=c?d#e/f 100%'
FULL_EVENTS: dict[str, dict[str, Any]] = {
    "whatsapp.status": {"error_message": UNICODE, "status": "failed"},
    "whatsapp.incoming": {"name": UNICODE, "body": UNICODE + "\nline 2", "location": LOCATION},
    "whatsapp.template_status": {"reason": UNICODE},
    "whatsapp.phone_quality": {"current_limit": "TIER_10K"},
    "chatbot.action": {"text": UNICODE, "slots": {"नाम": UNICODE, "n": 4}},
}


def _expected_text(value: Any) -> str:
    """How a value reads once it is a query parameter (contract §4)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return compact(value)


async def test_a_get_profile_receives_every_variable_percent_encoded(
    topics: Settings, sink: RawSink, gateway: Gateway
) -> None:
    profiles = {}
    sent: dict[str, GatewayEvent] = {}
    for name, extra in FULL_EVENTS.items():
        channel = EVENTS[name].channel
        names = sorted(variables_for(channel, [name]))
        profiles[name] = profile(
            sink,
            "/every/" + name,
            channel,
            [name],
            method="GET",
            query_params={var: "{{" + var + "}}" for var in names},
        )
        built = event(gateway, profiles[name], name)
        sent[name] = built._replace(
            value={**built.value, "ref1": UNICODE, "data": _full_event(gateway, name, extra)}
        )
    await publish_profiles(topics, *profiles.values())
    await produce(topics, sent.values())
    await drain(topics)

    for name, built in sent.items():
        [got] = sink.at("/every/" + name)
        raw = sink.raw_query(got)
        assert re.fullmatch(r"[A-Za-z0-9_.~%&=-]*", raw), f"{name}: {raw}"
        query = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        every = set(variables_for(EVENTS[name].channel, [name]))
        assert set(query) == every, f"{name}: missing {every - set(query)}"
        envelope = {
            **{k: v for k, v in built.value.items() if k not in ("data", "occurred_at")},
            "channel": EVENTS[name].channel,
            "attempt": 1,
            "is_test": False,
        }
        for var, value in {**built.data, **envelope}.items():
            assert query[var] == _expected_text(value), f"{name}.{var}"
        sent_at = datetime.fromisoformat(built.value["occurred_at"])
        assert datetime.fromisoformat(query["occurred_at"]) == sent_at
        # Each value was percent-encoded on its own: splitting the raw query on & and =
        # gives exactly one pair per variable.
        assert len(raw.split("&")) == len(every)
        assert all(unquote(pair.split("=", 1)[0]) in every for pair in raw.split("&"))


async def test_required_options_skip_incomplete_chatbot_actions_and_count_them(
    topics: Settings, sink: RawSink, gateway: Gateway
) -> None:
    bot = profile(
        sink,
        "",
        "chatbot",
        ["chatbot.action"],
        method="PUT",
        url=sink.url("/bot/{{session_id}}"),
        body_type="json",
        body='{"intent": "{{intent}}", "text": "{{text}}", "slots": {{slots}}}',
        required_options={"enabled": True, "variables": ["intent", "text"]},
    )
    await publish_profiles(topics, bot)
    complete = event(gateway, bot, "chatbot.action", {"session_id": "s1", "action": "update"})
    incomplete = [
        event(gateway, bot, "chatbot.action", {"session_id": "s2", "intent": None}),
        event(gateway, bot, "chatbot.action", {"session_id": "s3", "text": ""}),
        event(gateway, bot, "chatbot.action", {"session_id": "s4"}, drop=("intent",)),
    ]
    await produce(topics, [*incomplete, complete])
    dispatcher = await drain(topics)

    assert [r.path for r in sink.received] == ["/bot/s1"]
    [got] = sink.received
    assert got.method == "PUT"
    assert json.loads(got.body) == {
        "intent": complete.data["intent"],
        "text": complete.data["text"],
        "slots": complete.data["slots"],
    }
    skipped = metric(
        dispatcher, "callbacks_events_skipped_total", reason="required_variable_missing"
    )
    assert skipped == 3
