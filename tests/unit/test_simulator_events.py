"""The simulator's event builders make envelopes the dispatcher accepts, with data that
matches the catalog's types, keyed and ordered as contract §5 demands."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from callbacks.catalog import EVENTS
from callbacks.models.events import parse_event
from callbacks.topics import EVENT_TOPIC
from callbacks_dev.simulator.events import KINDS, Gateway, GatewayEvent, every_event

START = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
PROFILES = {"*": "8d6e4f2a-1b3c-4d5e-9f8a-7b6c5d4e3f2a", "sms.send": "sms-profile"}

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "datetime": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "object": (dict,),
    "list": (list,),
}


def gateway(seed: int = 7) -> Gateway:
    return Gateway(random.Random(seed), account_id="acct-1", profiles=PROFILES)


def many_events() -> list[GatewayEvent]:
    out: list[GatewayEvent] = []
    for seed in range(12):
        out += every_event(gateway(seed), START)
    return out


@pytest.mark.parametrize("seed", range(12))
def test_every_built_event_parses(seed: int) -> None:
    for built in every_event(gateway(seed), START):
        key, value = built.encode()
        event = parse_event(value)
        assert event.event == built.event
        assert key.decode() == built.key
        assert built.topic == EVENT_TOPIC[event.event]


def test_every_event_of_the_contract_is_built() -> None:
    assert {e.event for e in many_events()} == set(EVENTS)


def test_data_fields_are_catalog_fields_of_the_right_type() -> None:
    for built in many_events():
        fields = {f.name: f for f in EVENTS[built.event].fields}
        for name, value in built.data.items():
            assert name in fields, f"{built.event}: {name} is not in the catalog"
            if value is None:
                assert not fields[name].required
                continue
            expected = _TYPES[fields[name].type]
            assert isinstance(value, expected), f"{built.event}.{name}={value!r}"
            if fields[name].type == "datetime":
                assert datetime.fromisoformat(str(value)).tzinfo is not None
            allowed = fields[name].allowed
            if allowed is not None:
                assert value in allowed


def test_key_is_the_message_id_or_the_documented_substitute() -> None:
    substitute = {
        "whatsapp.template_status": "template_id",
        "whatsapp.phone_quality": "business_number",
        "chatbot.action": "session_id",
    }
    for built in many_events():
        assert built.key == built.data[substitute.get(built.event, "message_id")]


def test_same_seed_same_traffic_and_unique_event_ids() -> None:
    first = [e.encode() for e in every_event(gateway(3), START)]
    assert first == [e.encode() for e in every_event(gateway(3), START)]
    assert first != [e.encode() for e in every_event(gateway(4), START)]
    ids = [e.event_id for e in many_events()]
    assert len(ids) == len(set(ids))


def test_profile_follows_the_event_with_a_fallback() -> None:
    events = every_event(gateway(), START)
    for built in events:
        expected = "sms-profile" if built.event == "sms.send" else PROFILES["*"]
        assert built.value["callback_profile_id"] == expected
    with pytest.raises(KeyError, match=r"whatsapp\.status"):
        Gateway(random.Random(1), account_id="a", profiles={}).event("whatsapp.status")


@pytest.mark.parametrize(
    ("builder", "expected"),
    [
        ("sms", {"delivered": ["accepted", "sent", "delivered"]}),
        ("whatsapp_status", {"read": ["sent", "delivered", "read"]}),
        ("email", {"dropped": ["processed", "dropped"]}),
    ],
)
def test_a_lifecycle_is_one_key_in_order(builder: str, expected: dict[str, list[str]]) -> None:
    g = gateway()
    for outcome, statuses in expected.items():
        steps = getattr(g, builder)(START, outcome=outcome)
        assert [s.event.data["status"] for s in steps] == statuses
        assert len({s.event.key for s in steps}) == 1
        offsets = [s.offset_s for s in steps]
        assert offsets == sorted(offsets)
        times = [s.event.value["occurred_at"] for s in steps]
        assert times == sorted(times)


def test_sms_failures_carry_their_smpp_codes() -> None:
    g = gateway()
    stats = {"undelivered": "UNDELIV", "expired": "EXPIRED", "rejected": "REJECTD"}
    for outcome, stat in stats.items():
        final = g.sms(START, outcome=outcome)[-1].event.data
        assert final["status"] == outcome
        assert final["dlr_status"] == stat
        assert final["error_code"] == final["status_code"] != "000"
        assert final["error_message"]
    rejected = g.sms(START, outcome="rejected")
    assert [s.event.data["status"] for s in rejected] == ["accepted", "rejected"]


def test_shares_are_realistic() -> None:
    g = gateway()
    finals = Counter(g.sms(START)[-1].event.data["status"] for _ in range(3000))
    assert 0.83 < finals["delivered"] / 3000 < 0.93
    assert all(finals[s] > 30 for s in ("undelivered", "expired", "rejected"))
    mails = Counter(s.event.data["status"] for _ in range(2000) for s in g.email(START))
    assert mails["opened"] > mails["clicked"] > 0
    assert mails["bounced"] > 0
    assert mails["deferred"] > 0


def test_whatsapp_failures_use_real_cloud_api_codes() -> None:
    g = gateway()
    codes = {
        g.whatsapp_status(START, outcome="failed")[-1].event.data["error_code"] for _ in range(200)
    }
    assert {"131026", "131047", "131049"} <= codes


def test_incoming_messages_carry_their_type_specific_fields() -> None:
    g = gateway()
    location = g.whatsapp_incoming(START, kind="location")[0].event.data
    assert set(location["location"]) == {"latitude", "longitude", "name", "address"}
    contacts = g.whatsapp_incoming(START, kind="contacts")[0].event.data["contacts"]
    assert contacts[0]["name"]["formatted_name"]
    image = g.whatsapp_incoming(START, kind="image")[0].event.data
    assert image["mime_type"] == "image/jpeg"
    assert image["media_url"].startswith("https://")
    names = {g.whatsapp_incoming(START)[0].event.data["name"] for _ in range(200)}
    assert any(any("\u0900" <= ch <= "\u097f" for ch in n) for n in names)  # Devanagari
    assert any(any(ord(ch) > 0xFFFF for ch in n) for n in names)  # emoji


def test_incomplete_chatbot_sessions_lack_the_intent() -> None:
    g = gateway()
    steps = g.chatbot(START, incomplete=True)
    assert steps[0].event.data["intent"] is None
    assert steps[0].event.data["action"] == "create"
    assert [s.event.data["action"] for s in steps][:2] == ["create", "update"]


def test_event_overrides_and_drops_fields() -> None:
    built = gateway().event("whatsapp.incoming", {"name": "प्रिया 🌸"}, drop=("business_number",))
    assert built.data["name"] == "प्रिया 🌸"
    assert "business_number" not in built.data
    nulled = gateway().event("sms.send", {"sender": None})
    assert nulled.data["sender"] is None
    parse_event(orjson.dumps(nulled.value))


def test_at_restamps_occurred_at_only() -> None:
    built = gateway().event("chatbot.action")
    later = built.at(datetime(2027, 1, 1, tzinfo=UTC))
    assert later.value["occurred_at"] == "2027-01-01T00:00:00.000Z"
    rest: dict[str, Any] = {k: v for k, v in later.value.items() if k != "occurred_at"}
    assert rest == {k: v for k, v in built.value.items() if k != "occurred_at"}


@pytest.mark.parametrize("kind", KINDS)
def test_lifecycle_by_kind(kind: str) -> None:
    steps = gateway().lifecycle(kind, START)
    assert steps
    assert all(EVENTS[s.event.event].channel == kind for s in steps)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown kind"):
        gateway().lifecycle("fax", START)
