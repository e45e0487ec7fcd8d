"""The delivery summary (contract §7): delivered and failed callbacks per day or hour.

It sums the reporter's final-outcome counters (``delivery_counters``, one row per
account, profile and UTC quarter-hour), the numbers the report emails add up. Buckets are
local days or hours of the account's report time zone, their bounds computed here as
UTC instants: a day across a DST change is 23 or 25 hours long, and an hour that happens
twice is two buckets (each ``start`` carries its own offset). Every local midnight and
hour of every real zone falls on a UTC quarter-hour, so a bucket sums whole counter rows
and the totals are exact.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal, cast, get_args
from zoneinfo import ZoneInfo

from aiohttp import web
from pydantic import BaseModel

from profile_api.auth import account_id
from profile_api.keys import POOL
from profile_api.listing import QueryErrors, moment, uuid_param
from profile_api.openapi import json_body, problems, query_param, ref
from profile_api.problems import FieldProblem, Problem, validation_problem
from profile_api.routes.profiles import NOT_FOUND

Bucket = Literal["day", "hour"]
BUCKETS: tuple[str, ...] = get_args(Bucket)
# 31 days of hours, or a year and a bit of days, per request.
MAX_BUCKETS = 744
# Without ``from``: the last 7 days, or the last 24 hours, up to ``to``.
DEFAULT_SPAN = {"day": timedelta(days=6), "hour": timedelta(hours=23)}
_QUARTER = timedelta(minutes=15)


class Counts(BaseModel):
    delivered: int
    failed: int


class SummaryBucket(Counts):
    start: datetime


class ProfileSummary(Counts):
    id: str
    title: str | None  # None: the profile was deleted after these callbacks


class Summary(BaseModel):
    timezone: str
    bucket: Bucket
    buckets: list[SummaryBucket]
    totals: Counts
    profiles: list[ProfileSummary]


@dataclass(frozen=True)
class SummaryQuery:
    bucket: Bucket
    profile_id: uuid.UUID | None
    start: datetime | date | None  # a date is a local day of the account's zone
    end: datetime | date | None  # inclusive; a date is the whole local day


def parse_query(params: Mapping[str, str]) -> SummaryQuery:
    """Check the shape of every parameter; one 422 naming each bad one."""
    errors = QueryErrors()
    bucket = params.get("bucket") or "day"
    if bucket not in BUCKETS:
        errors.bad("bucket", "must be day or hour")
    profile = uuid_param(params, "profile_id", errors)
    # A date-time without an offset is local time of the account's zone, read later.
    start = moment(params, "from", errors, utc=False)
    end = moment(params, "to", errors, utc=False)
    errors.raise_any()
    return SummaryQuery(cast(Bucket, bucket), profile, start, end)


def _local_midnight(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _instant(value: datetime | date, zone: ZoneInfo, *, end: bool) -> datetime:
    """The UTC instant of a bound: a date is its local day (its last instant for ``end``)."""
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=zone)
        return aware.astimezone(UTC)
    if end:
        return _local_midnight(value + timedelta(days=1), zone) - timedelta(microseconds=1)
    return _local_midnight(value, zone)


def _is_hour_start(moment: datetime, zone: ZoneInfo) -> bool:
    local = moment.astimezone(zone)
    return local.minute == 0 and local.second == 0 and local.microsecond == 0


def bucket_bounds(bucket: Bucket, first: datetime, last: datetime, timezone: str) -> list[datetime]:
    """UTC starts of the buckets from the one holding ``first`` to the one holding
    ``last``, followed by the end of the last one (so ``len - 1`` buckets)."""
    zone = ZoneInfo(timezone)
    if bucket == "day":
        day, last_day = first.astimezone(zone).date(), last.astimezone(zone).date()
        bounds = []
        while day <= last_day + timedelta(days=1):
            bounds.append(_local_midnight(day, zone))
            day += timedelta(days=1)
        return bounds
    # Local hours start on UTC quarter-hours: step back to the one opening ``first``'s
    # hour, then forward, keeping each quarter-hour that opens a local hour.
    epoch = datetime(2000, 1, 1, tzinfo=UTC)
    moment = epoch + (first - epoch) // _QUARTER * _QUARTER
    while not _is_hour_start(moment, zone):
        moment -= _QUARTER
    bounds = [moment]
    while bounds[-1] <= last:
        moment += _QUARTER
        if _is_hour_start(moment, zone):
            bounds.append(moment)
    return bounds


def _span_error(bucket: Bucket, first: datetime, last: datetime) -> FieldProblem | None:
    if first > last:
        return FieldProblem(field="from", message="must not be after to")
    unit = timedelta(days=1) if bucket == "day" else timedelta(hours=1)
    if (last - first) // unit + 1 > MAX_BUCKETS:
        return FieldProblem(
            field="from",
            message=f"the range is too long: at most {MAX_BUCKETS} {bucket}s per request",
        )
    return None


def summary_bounds(
    query: SummaryQuery, timezone: str, now: datetime
) -> list[datetime] | FieldProblem:
    """The bucket bounds the summary covers (see :func:`bucket_bounds`), or the problem
    with the range."""
    zone = ZoneInfo(timezone)
    try:
        last = _instant(query.end, zone, end=True) if query.end is not None else now
    except (ValueError, OverflowError):
        return FieldProblem(field="to", message="is out of range")
    try:
        first = (
            _instant(query.start, zone, end=False)
            if query.start is not None
            else last - DEFAULT_SPAN[query.bucket]
        )
    except (ValueError, OverflowError):
        return FieldProblem(field="from", message="is out of range")
    problem = _span_error(query.bucket, first, last)
    if problem is not None:
        return problem
    try:
        return bucket_bounds(query.bucket, first, last, timezone)
    except (ValueError, OverflowError):  # the bucket after ``to`` is past the calendar
        return FieldProblem(field="to", message="is out of range")


_TIMEZONE = "SELECT timezone FROM report_settings WHERE account_id = $1"
_PROFILE = "SELECT 1 FROM callback_profiles WHERE id = $1 AND account_id = $2"
# $4 holds the bucket starts; width_bucket gives the 1-based bucket of each counter row.
_PER_BUCKET = """
SELECT width_bucket(c.bucket, $4::timestamptz[]) AS i,
       sum(c.delivered) AS delivered, sum(c.failed) AS failed
FROM delivery_counters c
WHERE c.account_id = $1 AND c.bucket >= $2 AND c.bucket < $3
  AND ($5::uuid IS NULL OR c.profile_id = $5)
GROUP BY 1
"""
_PER_PROFILE = """
SELECT c.profile_id, p.title, sum(c.delivered) AS delivered, sum(c.failed) AS failed
FROM delivery_counters c
LEFT JOIN callback_profiles p ON p.id = c.profile_id AND p.account_id = c.account_id
WHERE c.account_id = $1 AND c.bucket >= $2 AND c.bucket < $3
  AND ($4::uuid IS NULL OR c.profile_id = $4)
GROUP BY c.profile_id, p.title
ORDER BY p.title NULLS LAST, c.profile_id
"""


async def get_summary(request: web.Request) -> web.Response:
    query = parse_query(request.query)
    account = uuid.UUID(account_id(request))
    async with request.app[POOL].acquire() as conn:
        timezone: str = await conn.fetchval(_TIMEZONE, account) or "UTC"
        try:
            ZoneInfo(timezone)
        except (KeyError, ValueError):  # saved under a tzdata that knew it; this one does not
            timezone = "UTC"
        bounds = summary_bounds(query, timezone, datetime.now(UTC))
        if isinstance(bounds, FieldProblem):
            raise validation_problem([bounds])
        if query.profile_id is not None and not await conn.fetchval(
            _PROFILE, query.profile_id, account
        ):
            raise Problem(404, NOT_FOUND)
        window = (account, bounds[0], bounds[-1])
        bucket_rows = await conn.fetch(_PER_BUCKET, *window, bounds[:-1], query.profile_id)
        profile_rows = await conn.fetch(_PER_PROFILE, *window, query.profile_id)
    per_bucket = {row["i"]: row for row in bucket_rows}
    zone = ZoneInfo(timezone)
    buckets = [
        SummaryBucket(
            start=start.astimezone(zone),
            delivered=int(per_bucket[i]["delivered"]) if i in per_bucket else 0,
            failed=int(per_bucket[i]["failed"]) if i in per_bucket else 0,
        )
        for i, start in enumerate(bounds[:-1], start=1)
    ]
    summary = Summary(
        timezone=timezone,
        bucket=query.bucket,
        buckets=buckets,
        totals=Counts(
            delivered=sum(b.delivered for b in buckets), failed=sum(b.failed for b in buckets)
        ),
        profiles=[
            ProfileSummary(
                id=str(row["profile_id"]),
                title=row["title"],
                delivered=int(row["delivered"]),
                failed=int(row["failed"]),
            )
            for row in profile_rows
        ],
    )
    return web.json_response(summary.model_dump(mode="json"))


def register(app: web.Application) -> None:
    app.router.add_get("/v1/callback-reports/summary", get_summary)


OPENAPI_MODELS: tuple[type[BaseModel], ...] = (Summary,)
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/callback-reports/summary": {
        "get": {
            "summary": "Delivered and failed callbacks per day or hour, in the account's time zone",
            "parameters": [
                query_param(
                    "from",
                    "ISO 8601 date or date-time; the first bucket is the one holding it"
                    " (default: 6 days or 23 hours before `to`)",
                    {"type": "string"},
                ),
                query_param(
                    "to",
                    "ISO 8601 date or date-time, inclusive: the last bucket holds it (a date is"
                    " the whole local day; default: now)",
                    {"type": "string"},
                ),
                query_param(
                    "profile_id", "Only this callback profile", {"type": "string", "format": "uuid"}
                ),
                query_param("bucket", "Bucket size", {"enum": list(BUCKETS), "default": "day"}),
            ],
            "responses": {"200": json_body(ref(Summary), "The summary"), **problems(404, 422)},
        }
    },
}
