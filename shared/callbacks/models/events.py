"""Gateway events (contract §5): the envelope, parsing and the variables of an event.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


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


def parse_event(raw: bytes | None) -> Event:
    """Parse and validate against the catalog: valid JSON, envelope fields present,
    a known event, required data fields present and non-null, values in their sets.
    Unknown extra fields are ignored. Raises InvalidEvent with a short reason."""
    raise NotImplementedError


def event_variables(event: Event, *, channel: str, attempt: int, is_test: bool) -> dict[str, Any]:
    """The template variables: data fields, envelope fields, channel, attempt, is_test."""
    raise NotImplementedError
