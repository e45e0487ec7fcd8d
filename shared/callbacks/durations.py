"""Durations as users write them: ``90s``, ``30m``, ``2h``, ``1d``, ``250ms``."""

from __future__ import annotations

import re

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ValueError naming the accepted forms."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """The shortest exact spelling of ``seconds`` (used to name retry topics)."""
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{round(seconds * 1000)}ms"


def parse_schedule(text: str) -> tuple[float, ...]:
    """Parse a comma-separated retry schedule such as ``5s,30s,2m``."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ValueError("the retry schedule needs at least one delay")
    return tuple(parse_duration(part) for part in parts)
