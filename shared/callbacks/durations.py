"""Durations as users write them: ``90s``, ``30m``, ``2h``, ``1d``, ``250ms``."""

from __future__ import annotations

import re
from typing import Any

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ValueError naming the accepted forms."""
    match = _PATTERN.match(text)
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


class Duration(float):
    """A length of time in seconds that remembers how it was written.

    It is a ``float`` (code computes with it directly: ``timeout=settings.delivery_timeout``)
    and ``str()`` gives back its spelling (``90s``, ``250ms``), so logs and the settings
    dump show what the operator wrote. As a settings field it accepts only a string in
    the documented forms, or another ``Duration``.
    """

    text: str

    def __new__(cls, text: str) -> Duration:
        if isinstance(text, Duration):
            return text
        if not isinstance(text, str):  # a ValueError, so pydantic reports the field
            raise ValueError(  # noqa: TRY004
                f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d)"
            )
        value = super().__new__(cls, parse_duration(text))
        value.text = text.strip()
        return value

    @property
    def ms(self) -> int:
        """Whole milliseconds (Kafka's topic configs count in them)."""
        return round(self * 1000)

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls,
            serialization=core_schema.plain_serializer_function_ser_schema(str),
            json_schema_input_schema=core_schema.str_schema(),
        )


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
