"""Profile filters (contract §3b): does an event's variables pass every filter? Pure.

The dispatcher calls :func:`passes` where it checks ``required_options``; an event that
fails is skipped and counted (``reason="filtered"``). A variable compares by its text:
a string as it is, ``true``/``false``, a number as JSON writes it, a list or object as
compact JSON with sorted keys. A variable that is absent or null has no text: ``in`` and
``equals`` do not hold for it, ``not_in`` does. ``exists`` means present and non-empty,
the same test ``required_options`` makes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from callbacks.models.profiles import Filter

__all__ = ["is_present", "passes", "value_text"]


def is_present(value: Any) -> bool:
    """Present and non-empty (not null, ``""``, ``[]`` or ``{}``)."""
    if isinstance(value, str | list | dict):
        return len(value) > 0
    return value is not None


def value_text(value: Any) -> str | None:
    """The text a filter compares, or None for an absent or null variable."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _holds(rule: Filter, variables: Mapping[str, Any]) -> bool:
    value = variables.get(rule.variable)
    if rule.exists is not None:
        return is_present(value) == rule.exists
    text = value_text(value)
    if rule.equals is not None:
        return text == rule.equals
    if rule.in_ is not None:
        return text is not None and text in rule.in_
    assert rule.not_in is not None  # a Filter has exactly one operator
    return text is None or text not in rule.not_in


def passes(filters: Sequence[Filter], variables: Mapping[str, Any]) -> bool:
    """Whether every filter holds for ``variables`` (no filters: always)."""
    return all(_holds(rule, variables) for rule in filters)
