"""Realistic gateway events (contract §5): seeded, pure builders of whole envelopes.

A builder returns every status of one message, in order, as ``Step``s whose event is a
``GatewayEvent``: the topic's base name (apply ``Topics.name`` for a prefix), the record
key (the message id, or template_id / business_number / session_id, so every status of
one message lands in one partition, in order) and the JSON value. The simulator, the
benchmark and the tests all build their traffic here, so they exercise the same shapes.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from callbacks.topics import EVENT_TOPIC

from callbacks_dev.simulator import chatbot, mail, pools, sms, whatsapp
from callbacks_dev.simulator.steps import DataStep

# What ``lifecycle(kind)`` can build; the simulator's ``--mix`` spreads traffic over them.
KINDS = ("sms", "email", "whatsapp", "chatbot")
# Within "whatsapp": outgoing statuses dominate; reviews and quality changes are rare.
WHATSAPP_SHARES = (
    ("status", 0.68),
    ("incoming", 0.28),
    ("template_status", 0.02),
    ("phone_quality", 0.02),
)
EVENTS = tuple(EVENT_TOPIC)
_REFERENCED = {"sms.send", "email.send", "whatsapp.status"}


class GatewayEvent(NamedTuple):
    """One record as a gateway produces it."""

    topic: str
    key: str
    value: dict[str, Any]

    @property
    def event(self) -> str:
        name: str = self.value["event"]
        return name

    @property
    def event_id(self) -> str:
        event_id: str = self.value["event_id"]
        return event_id

    @property
    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = self.value["data"]
        return data

    def encode(self) -> tuple[bytes, bytes]:
        """(key, value) bytes for the producer."""
        return self.key.encode(), orjson.dumps(self.value)

    def at(self, moment: datetime) -> GatewayEvent:
        """The same event with ``occurred_at`` set to ``moment`` (when it is produced)."""
        return self._replace(value={**self.value, "occurred_at": pools.iso(moment)})


class Step(NamedTuple):
    """A ``GatewayEvent`` due ``offset_s`` after its lifecycle started."""

    offset_s: float
    event: GatewayEvent


class Gateway:
    """Builds envelopes for one account. ``profiles`` maps an event name to the callback
    profile id the send request named (key ``"*"``: any other event)."""

    def __init__(
        self,
        rng: random.Random,
        *,
        account_id: str,
        profiles: Mapping[str, str],
    ) -> None:
        self.rng = rng
        self.account_id = account_id
        self.profiles = dict(profiles)

    def profile_for(self, event: str) -> str:
        try:
            return self.profiles.get(event) or self.profiles["*"]
        except KeyError:
            raise KeyError(f"no callback profile for {event}") from None

    def wrap(self, step: DataStep, start: datetime) -> Step:
        """The envelope around one data step."""
        ref: str | None = None
        ref1: str | None = None
        if step.event in _REFERENCED:
            ref = f"order_{self.rng.randrange(10**6):06d}"
            if self.rng.random() < 0.2:
                ref1 = f"cust_{self.rng.randrange(10**5):05d}"
        value = {
            "event_id": pools.uuid4(self.rng),
            "event": step.event,
            "account_id": self.account_id,
            "callback_profile_id": self.profile_for(step.event),
            "occurred_at": pools.iso(start + timedelta(seconds=step.offset_s)),
            "ref": ref,
            "ref1": ref1,
            "ref2": None,
            "data": step.data,
        }
        return Step(step.offset_s, GatewayEvent(EVENT_TOPIC[step.event], step.key, value))

    def _wrap_all(self, steps: list[DataStep], start: datetime) -> list[Step]:
        return [self.wrap(step, start) for step in steps]

    # One builder per lifecycle; ``outcome`` (or ``kind``) forces a branch for tests.

    def sms(self, start: datetime, *, outcome: str | None = None) -> list[Step]:
        return self._wrap_all(sms.sms_lifecycle(self.rng, start, outcome=outcome), start)

    def email(self, start: datetime, *, outcome: str | None = None) -> list[Step]:
        return self._wrap_all(mail.email_lifecycle(self.rng, start, outcome=outcome), start)

    def whatsapp_status(self, start: datetime, *, outcome: str | None = None) -> list[Step]:
        steps = whatsapp.status_lifecycle(self.rng, start, outcome=outcome)
        return self._wrap_all(steps, start)

    def whatsapp_incoming(self, start: datetime, *, kind: str | None = None) -> list[Step]:
        return [self.wrap(whatsapp.incoming(self.rng, start, kind=kind), start)]

    def whatsapp_template_status(self, start: datetime, *, status: str | None = None) -> list[Step]:
        return [self.wrap(whatsapp.template_status(self.rng, status=status), start)]

    def whatsapp_phone_quality(self, start: datetime, *, flagged: bool | None = None) -> list[Step]:
        return [self.wrap(whatsapp.phone_quality(self.rng, flagged=flagged), start)]

    def chatbot(self, start: datetime, *, incomplete: bool | None = None) -> list[Step]:
        steps = chatbot.chatbot_session(self.rng, start, incomplete=incomplete)
        return self._wrap_all(steps, start)

    def lifecycle(self, kind: str, start: datetime) -> list[Step]:
        """Every step of one message of ``kind`` (one of ``KINDS``), at realistic shares."""
        if kind == "whatsapp":
            sub = pools.weighted(self.rng, WHATSAPP_SHARES)
            builders: dict[str, Callable[[datetime], list[Step]]] = {
                "status": self.whatsapp_status,
                "incoming": self.whatsapp_incoming,
                "template_status": self.whatsapp_template_status,
                "phone_quality": self.whatsapp_phone_quality,
            }
            return builders[sub](start)
        simple: dict[str, Callable[[datetime], list[Step]]] = {
            "sms": self.sms,
            "email": self.email,
            "chatbot": self.chatbot,
        }
        if kind not in simple:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        return simple[kind](start)

    def event(
        self,
        name: str,
        overrides: Mapping[str, Any] | None = None,
        *,
        start: datetime | None = None,
        drop: tuple[str, ...] = (),
    ) -> GatewayEvent:
        """One event named ``name`` (the last step of a typical lifecycle), its ``data``
        updated with ``overrides`` (a value of None makes the field null) and the fields
        in ``drop`` removed. For tests that need one precise event."""
        start = start or datetime.now(UTC)
        steps = {
            "sms.send": lambda: self.sms(start, outcome="delivered"),
            "email.send": lambda: self.email(start, outcome="delivered"),
            "whatsapp.status": lambda: self.whatsapp_status(start, outcome="read"),
            "whatsapp.incoming": lambda: self.whatsapp_incoming(start, kind="text"),
            "whatsapp.template_status": lambda: self.whatsapp_template_status(start),
            "whatsapp.phone_quality": lambda: self.whatsapp_phone_quality(start),
            "chatbot.action": lambda: self.chatbot(start, incomplete=False)[:1],
        }[name]()
        built = steps[-1].event
        new_data = {k: v for k, v in {**built.data, **(overrides or {})}.items() if k not in drop}
        return built._replace(value={**built.value, "data": new_data})


def every_event(gateway: Gateway, start: datetime) -> list[GatewayEvent]:
    """At least one event of every branch of every builder: each SMS and email outcome,
    each WhatsApp status and incoming type, each template status, both quality events,
    complete and incomplete chatbot sessions. Tests validate these against the catalog."""
    out: list[Step] = []
    for outcome, _ in sms.OUTCOME_SHARES:
        out += gateway.sms(start, outcome=outcome)
    for outcome, _ in mail.OUTCOME_SHARES:
        out += gateway.email(start, outcome=outcome)
    for outcome, _ in whatsapp.STATUS_SHARES:
        out += gateway.whatsapp_status(start, outcome=outcome)
    for kind, _ in whatsapp.INCOMING_TYPES:
        out += gateway.whatsapp_incoming(start, kind=kind)
    for status in ("approved", "rejected", "paused", "disabled"):
        out += gateway.whatsapp_template_status(start, status=status)
    for flagged in (True, False):
        out += gateway.whatsapp_phone_quality(start, flagged=flagged)
    for incomplete in (True, False):
        out += gateway.chatbot(start, incomplete=incomplete)
    return [step.event for step in out]
