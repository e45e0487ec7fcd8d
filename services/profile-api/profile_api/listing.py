"""The listing query string (contract §3 "Listing") and its opaque cursor.

The cursor is base64url of ``[created_at, id]`` of the last item of a page: keyset
pagination, so a page costs the same however deep it is and concurrent inserts never
shift or repeat items.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import get_args

import orjson
from callbacks.models.profiles import Channel, Method, ProfileRecord

from profile_api.problems import FieldProblem, validation_problem
from profile_api.store import ListQuery

DEFAULT_LIMIT = 20
MAX_LIMIT = 100
_Bad = Callable[[str, str], None]

METHODS = get_args(Method)
CHANNELS = get_args(Channel)


def encode_cursor(record: ProfileRecord) -> str:
    raw = orjson.dumps([record.created_at.isoformat(), record.id])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(value: str) -> tuple[datetime, uuid.UUID]:
    padded = value + "=" * (-len(value) % 4)
    created, profile_id = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    if not isinstance(created, str) or not isinstance(profile_id, str):
        raise TypeError("cursor fields are not strings")
    when = datetime.fromisoformat(created)
    if when.tzinfo is None:
        raise ValueError("cursor time without zone")
    return when.astimezone(UTC), uuid.UUID(profile_id)


def _parse_moment(value: str) -> datetime | date:
    """A date-only value stays a date (it means the whole day); a naive time is UTC."""
    if len(value) == 10:
        return date.fromisoformat(value)
    moment = datetime.fromisoformat(value)
    # Normalised here so an extreme offset fails as a 422, not in the database driver.
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC)


def _limit(params: Mapping[str, str], bad: _Bad) -> int:
    if "limit" not in params:
        return DEFAULT_LIMIT
    try:
        limit = int(params["limit"])
    except ValueError:
        bad("limit", "must be an integer")
        return DEFAULT_LIMIT
    if not 1 <= limit <= MAX_LIMIT:
        bad("limit", f"must be between 1 and {MAX_LIMIT}")
    return limit


def _one_of(
    params: Mapping[str, str], name: str, allowed: tuple[str, ...], bad: _Bad
) -> str | None:
    value = params.get(name) or None
    if value is not None and value not in allowed:
        bad(name, f"must be one of {', '.join(allowed)}")
    return value


def _moment(params: Mapping[str, str], name: str, bad: _Bad) -> datetime | date | None:
    if not params.get(name):
        return None
    try:
        return _parse_moment(params[name])
    except (ValueError, OverflowError):
        bad(name, "must be an ISO 8601 date or date-time")
        return None


def parse_list_query(params: Mapping[str, str]) -> ListQuery:
    """Validate every listing parameter; 422 naming each bad one."""
    errors: list[FieldProblem] = []

    def bad(field: str, message: str) -> None:
        errors.append(FieldProblem(field=field, message=message))

    limit = _limit(params, bad)
    title = params.get("title") or None
    if title is not None and (len(title) > 200 or "\x00" in title):
        bad("title", "must be at most 200 characters, without NUL")
    method = _one_of(params, "method", METHODS, bad)
    channel = _one_of(params, "channel", CHANNELS, bad)

    start = _moment(params, "created_from", bad)
    if isinstance(start, date) and not isinstance(start, datetime):
        start = datetime.combine(start, time.min, UTC)
    end = _moment(params, "created_to", bad)
    created_to: datetime | None = None
    created_before: datetime | None = None
    if isinstance(end, datetime):
        created_to = end
    elif isinstance(end, date) and end < date.max:
        created_before = datetime.combine(end + timedelta(days=1), time.min, UTC)

    after: tuple[datetime, uuid.UUID] | None = None
    if params.get("cursor"):
        try:
            after = _decode_cursor(params["cursor"])
        except (ValueError, TypeError, OverflowError, binascii.Error):
            bad("cursor", "not a cursor returned by this API")

    if errors:
        raise validation_problem(errors)
    return ListQuery(
        limit=limit,
        title=title,
        method=method,
        channel=channel,
        created_from=start,
        created_to=created_to,
        created_before=created_before,
        after=after,
    )
