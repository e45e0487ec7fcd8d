"""Save-time validation of a profile (contract §3 rules, §4 templates). Pure.

INTERFACE FIXED — implementation to be filled in.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbacks.models.profiles import ProfileSpec


@dataclass(frozen=True)
class FieldError:
    field: str  # dotted path into the body: "body", "headers.X-Id", "events", "encryption.key"
    message: str  # user-facing; for unknown variables it lists the valid ones


def validate_profile(spec: ProfileSpec) -> list[FieldError]:
    """Every rule that spans fields or needs the catalog: events of the channel, methods
    per channel, body rules per method, body_type with a body, encryption key length,
    authentication fields per type, required_options variables, max_age, and every
    template rendered with the channel's sample values (JSON must parse, XML must be
    well-formed, unknown variables listed with the valid ones). Empty list = valid."""
    raise NotImplementedError
