"""The channel/event/variable catalog (contract §3 "Catalog", §5). Pure data and lookups.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

VarType = Literal["string", "number", "integer", "boolean", "object", "list", "datetime"]


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    example: Any
    type: VarType = "string"
    required: bool = False  # required in the event's data (bold in contract §5)
    allowed: tuple[str, ...] | None = None  # the value set, where the contract gives one


@dataclass(frozen=True)
class EventSpec:
    name: str  # e.g. "sms.send"
    channel: str  # e.g. "sms"
    topic: str  # source topic without prefix, e.g. "whatsapp.events"
    description: str
    fields: tuple[Variable, ...]  # the `data` fields


@dataclass(frozen=True)
class ChannelSpec:
    name: str
    title: str  # "SMS", "Default — no channel", ...
    methods: tuple[str, ...]  # GET/POST everywhere; PUT/DELETE only on chatbot
    events: tuple[str, ...]


# Envelope variables every event has, plus the three the dispatcher adds
# (channel, attempt, is_test).
ENVELOPE_VARIABLES: tuple[Variable, ...] = ()
CHANNELS: dict[str, ChannelSpec] = {}
EVENTS: dict[str, EventSpec] = {}


def variables_for(channel: str, events: Sequence[str]) -> dict[str, Variable]:
    """Variables a profile of ``channel`` subscribed to ``events`` may use, by name.

    ``default`` (no events) gets the envelope variables only; otherwise the union of the
    events' data fields and the envelope variables.
    """
    raise NotImplementedError


def sample_values(channel: str, events: Sequence[str]) -> dict[str, Any]:
    """Every variable of ``variables_for`` mapped to its example (used to validate templates)."""
    raise NotImplementedError


def catalog_document() -> list[dict[str, Any]]:
    """The body of ``GET /v1/channels`` (contract §3), including encryption layouts."""
    raise NotImplementedError
