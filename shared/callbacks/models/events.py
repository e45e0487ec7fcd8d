"""Gateway events (contract §5): the envelope, parsing and the variables of an event.

``parse_event`` runs once per consumed record in the dispatcher's hot path, so it checks
fields by hand against rules precomputed from the catalog and builds the model with
``model_construct`` instead of letting pydantic validate the data dict again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import BaseModel

from callbacks.catalog import EVENTS


class InvalidEvent(ValueError):
    """Why a record is not a valid event; goes to callbacks.dead as the reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Event(BaseModel):
    event_id: str
    event: str
    account_id: str
    callback_profile_id: str
    occurred_at: datetime
    ref: str | None = None
    ref1: str | None = None
    ref2: str | None = None
    data: dict[str, Any]


_ENVELOPE_IDS = ("event_id", "event", "account_id", "callback_profile_id")
_REFS = ("ref", "ref1", "ref2")


class _Rules:
    """Required data fields and value sets of one event, as the parser needs them."""

    __slots__ = ("allowed", "required")

    def __init__(self, event: str) -> None:
        fields = EVENTS[event].fields
        self.required = tuple(
            (f.name, f"missing_field:data.{f.name}") for f in fields if f.required
        )
        self.allowed = tuple(
            (f.name, frozenset(f.allowed), f"invalid_value:data.{f.name}")
            for f in fields
            if f.allowed is not None
        )


_RULES: dict[str, _Rules] = {name: _Rules(name) for name in EVENTS}


def parse_event(raw: bytes | None) -> Event:
    """Parse and validate against the catalog: valid JSON, envelope fields present,
    a known event, required data fields present and non-null, values in their sets.
    Unknown extra fields are ignored. Raises InvalidEvent with a short reason."""
    if not raw:
        raise InvalidEvent("invalid_json")
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise InvalidEvent("invalid_json") from None
    if not isinstance(doc, dict):
        raise InvalidEvent("not_an_object")

    for name in _ENVELOPE_IDS:
        value = doc.get(name)
        if value is None or value == "":
            raise InvalidEvent(f"missing_field:{name}")
        if not isinstance(value, str):
            raise InvalidEvent(f"invalid_value:{name}")
    rules = _RULES.get(doc["event"])
    if rules is None:
        raise InvalidEvent(f"unknown_event:{doc['event'][:100]}")

    occurred_at = _parse_time(doc.get("occurred_at"))
    for name in _REFS:
        value = doc.get(name)
        if value is not None and not isinstance(value, str):
            raise InvalidEvent(f"invalid_value:{name}")

    data = doc.get("data")
    if data is None:
        raise InvalidEvent("missing_field:data")
    if not isinstance(data, dict):
        raise InvalidEvent("invalid_value:data")
    for name, reason in rules.required:
        if data.get(name) is None:
            raise InvalidEvent(reason)
    for name, allowed, reason in rules.allowed:
        value = data.get(name)
        if value is not None and (not isinstance(value, str) or value not in allowed):
            raise InvalidEvent(reason)

    return Event.model_construct(
        event_id=doc["event_id"],
        event=doc["event"],
        account_id=doc["account_id"],
        callback_profile_id=doc["callback_profile_id"],
        occurred_at=occurred_at,
        ref=doc.get("ref"),
        ref1=doc.get("ref1"),
        ref2=doc.get("ref2"),
        data=data,
    )


def _parse_time(value: Any) -> datetime:
    if value is None or value == "":
        raise InvalidEvent("missing_field:occurred_at")
    if not isinstance(value, str):
        raise InvalidEvent("invalid_value:occurred_at")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidEvent("invalid_value:occurred_at") from None
    # A gateway that omits the offset means UTC; comparisons need an aware datetime.
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def event_variables(event: Event, *, channel: str, attempt: int, is_test: bool) -> dict[str, Any]:
    """The template variables: data fields, envelope fields, channel, attempt, is_test."""
    variables = dict(event.data)
    # Envelope and dispatcher variables win a name clash, as in the catalog.
    variables.update(
        event_id=event.event_id,
        event=event.event,
        occurred_at=event.occurred_at.isoformat().replace("+00:00", "Z"),
        account_id=event.account_id,
        callback_profile_id=event.callback_profile_id,
        ref=event.ref,
        ref1=event.ref1,
        ref2=event.ref2,
        channel=channel,
        attempt=attempt,
        is_test=is_test,
    )
    return variables
