"""The query string of the API's paged listings and read-outs: one home for its rules.

A listing (callback profiles, deliveries) pages with an opaque cursor: base64url of the
JSON ``[time, key]`` of the last item of a page. That is keyset pagination, so a page
costs the same however deep it is and concurrent inserts never shift or repeat items.
Times in a query string are ISO 8601: a date alone (``YYYY-MM-DD``) means that whole day.
An empty parameter is as if absent. Every bad parameter is collected, and one ``422``
names each of them (``QueryErrors``).
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, TypeVar

import orjson

from profile_api.openapi import query_param
from profile_api.problems import FieldProblem, validation_problem

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
NOT_A_MOMENT = "must be an ISO 8601 date or date-time"
NOT_A_CURSOR = "not a cursor returned by this API"

K = TypeVar("K")

# The page parameters of every listing, as its OpenAPI operation lists them.
PAGE_PARAMETERS: list[dict[str, Any]] = [
    query_param(
        "limit",
        "Page size",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
    query_param("cursor", "next_cursor of the previous page", {"type": "string"}),
]


class QueryErrors:
    """The bad parameters of one query string, in the order they were checked."""

    def __init__(self) -> None:
        self.problems: list[FieldProblem] = []

    def bad(self, field: str, message: str) -> None:
        self.problems.append(FieldProblem(field=field, message=message))

    def raise_any(self) -> None:
        """Raise one 422 naming every bad parameter, if there was one."""
        if self.problems:
            raise validation_problem(self.problems)


def encode_cursor(at: datetime, key: str) -> str:
    """The cursor of a page whose last item is ``(at, key)`` (``at`` time-zone aware)."""
    raw = orjson.dumps([at.isoformat(), key])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(value: str) -> tuple[datetime, str]:
    """``(at, key)`` of a cursor ``encode_cursor`` made, ``at`` in UTC.

    Raises ValueError, TypeError, OverflowError or binascii.Error for anything else.
    """
    padded = value + "=" * (-len(value) % 4)
    at, key = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(at, str) or not isinstance(key, str):
        raise TypeError("cursor fields are not strings")
    moment = datetime.fromisoformat(at)
    if moment.tzinfo is None:
        raise ValueError("cursor time without zone")
    return moment.astimezone(UTC), key


def cursor(
    params: Mapping[str, str], errors: QueryErrors, key: Callable[[str], K]
) -> tuple[datetime, K] | None:
    """The ``cursor`` parameter, its key read by ``key`` (which raises ValueError)."""
    if not params.get("cursor"):
        return None
    try:
        at, raw = decode_cursor(params["cursor"])
        return at, key(raw)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        errors.bad("cursor", NOT_A_CURSOR)
        return None


def page_limit(value: str | None, errors: QueryErrors) -> int:
    """The page size: ``DEFAULT_LIMIT`` when ``value`` is None or empty (an empty query
    parameter is an absent one, as for every other listing parameter), else 1 to
    ``MAX_LIMIT``."""
    if not value:
        return DEFAULT_LIMIT
    try:
        limit = int(value)
    except ValueError:
        errors.bad("limit", "must be an integer")
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        errors.bad("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def one_of(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], errors: QueryErrors
) -> str | None:
    value = params.get(name) or None
    if value is not None and value not in allowed:
        errors.bad(name, f"must be one of {', '.join(allowed)}")
    return value


def uuid_param(params: Mapping[str, str], name: str, errors: QueryErrors) -> uuid.UUID | None:
    if not params.get(name):
        return None
    try:
        return uuid.UUID(params[name])
    except ValueError:
        errors.bad(name, "must be a UUID")
        return None


def parse_moment(value: str) -> datetime | date:
    """A date alone stays a date (the whole day); a date-time is read as written."""
    if len(value) == 10:
        return date.fromisoformat(value)
    return datetime.fromisoformat(value)


def _in_utc(moment: datetime | date) -> datetime | date:
    """A date-time in UTC (one without an offset is UTC); a date as it is."""
    if not isinstance(moment, datetime):
        return moment
    # Normalised here so an extreme offset fails as a 422, not in the database driver.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def moment(
    params: Mapping[str, str], name: str, errors: QueryErrors, *, utc: bool = True
) -> datetime | date | None:
    """The date or date-time parameter ``name``; a date-time in UTC unless ``utc`` is false
    (then as written: one without an offset is local time, read by the caller)."""
    if not params.get(name):
        return None
    try:
        parsed = parse_moment(params[name])
        return _in_utc(parsed) if utc else parsed
    except (ValueError, OverflowError):
        errors.bad(name, NOT_A_MOMENT)
        return None


@dataclass(frozen=True)
class Window:
    """A time window in UTC: from ``start`` (inclusive) to ``end`` (inclusive) or to
    ``before`` (exclusive); at most one of ``end`` and ``before`` is set."""

    start: datetime | None = None
    end: datetime | None = None
    before: datetime | None = None


def utc_window(start: datetime | date | None, end: datetime | date | None) -> Window:
    """The window of inclusive UTC bounds: a date ``start`` is that day's first instant,
    a date ``end`` takes in its whole day (up to the next day's start)."""
    if isinstance(start, date) and not isinstance(start, datetime):
        start = datetime.combine(start, time.min, UTC)
    if isinstance(end, datetime):
        return Window(start, end, None)
    if isinstance(end, date) and end < date.max:
        return Window(start, None, datetime.combine(end + timedelta(days=1), time.min, UTC))
    return Window(start, None, None)
