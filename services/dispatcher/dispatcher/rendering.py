"""What a callback is for one event: its id, its variables, whether it is skipped, and
the host it goes to. Pure (no I/O). Its request is ``callbacks.request.build_request``.
"""

from __future__ import annotations

import hashlib
import uuid
from functools import lru_cache
from typing import Any

from callbacks import catalog
from callbacks.filters import passes
from callbacks.models.events import Event, event_variables
from callbacks.models.profiles import ProfileRecord
from yarl import URL

_DELIVERY_NS = uuid.UUID("6f1c2a4e-3b7d-5e8f-9a0b-1c2d3e4f5a6b").bytes


def delivery_id_for(event_id: str, profile_id: str) -> str:
    """Deterministic, so a replay after a crash sends the same ``webhook-id``."""
    # uuid5 spelled out (same value): the uuid module's objects cost more per event.
    # SHA-1 is what uuid5 is defined on; this is an identifier, not a security hash.
    name = _DELIVERY_NS + f"{event_id}/{profile_id}".encode()
    digest = bytearray(hashlib.sha1(name, usedforsecurity=False).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return "msg_" + digest.hex()


def event_channel(event: Event) -> str:
    spec = catalog.EVENTS.get(event.event)
    return spec.channel if spec is not None else "default"


def variables_for_profile(
    event: Event, profile: ProfileRecord, *, attempt: int, is_test: bool
) -> dict[str, Any]:
    """The event's variables; a ``default`` profile sees only the envelope ones."""
    variables = event_variables(
        event, channel=event_channel(event), attempt=attempt, is_test=is_test
    )
    if profile.channel == "default":
        envelope = {v.name for v in catalog.ENVELOPE_VARIABLES}
        variables = {k: v for k, v in variables.items() if k in envelope}
    return variables


def skip_reason(
    event: Event, profile: ProfileRecord | None, variables: dict[str, Any] | None
) -> str | None:
    """Why the event is not delivered to ``profile``, or None. ``variables`` are needed
    (not None) when the profile has ``required_options`` or ``filters``."""
    if profile is None:
        return "unknown_profile"
    if profile.account_id != event.account_id:
        return "other_account"
    if not profile.enabled or profile.disabled_reason is not None:
        return "disabled"
    if profile.channel != "default" and event.event not in profile.events:
        return "not_subscribed"
    if profile.required_options.enabled and variables is not None:
        for name in profile.required_options.variables:
            if variables.get(name) in (None, "", [], {}):
                return "required_variable_missing"
    if profile.filters and variables is not None and not passes(profile.filters, variables):
        return "filtered"
    return None


@lru_cache(maxsize=65536)
def host_key(url: str) -> str:
    """The endpoint protection key (host and port) of a profile url."""
    parsed = URL(url, encoded=True)
    return f"{parsed.host}:{parsed.port}"


class LazyVariables:
    """An attempt's template variables, built on first use: a callback parked because
    its host is busy (``host_busy``) is never rendered, so it never needs them."""

    __slots__ = ("_attempt", "_event", "_profile", "_value")

    def __init__(self, event: Event, profile: ProfileRecord, attempt: int) -> None:
        self._event, self._profile, self._attempt = event, profile, attempt
        self._value: dict[str, Any] | None = None

    def get(self) -> dict[str, Any]:
        if self._value is None:
            self._value = variables_for_profile(
                self._event, self._profile, attempt=self._attempt, is_test=False
            )
        return self._value
