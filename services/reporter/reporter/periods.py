"""Report periods in an account's time zone: pure arithmetic, no I/O.

A period is a run of whole local days: a day, an ISO week (Monday to Sunday) or a
calendar month. Its bounds are the UTC instants of the local midnights that open and
close it, so a period across a DST change is 23, 25, 167 … hours long, as it should
be. Where a zone skips midnight (e.g. America/Havana springs forward at 00:00) the
day starts at the first instant that exists; where midnight happens twice, at the
first one (``fold=0`` in both cases).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

Frequency = Literal["daily", "weekly", "monthly"]
FREQUENCIES: tuple[Frequency, ...] = ("daily", "weekly", "monthly")


@dataclass(frozen=True)
class Period:
    """Local days ``first_day`` … ``last_day`` (inclusive) and their UTC bounds.

    ``end`` is the closing midnight for a closed period, or the moment of a send-now
    request for the period so far.
    """

    frequency: Frequency
    timezone: str
    first_day: date
    last_day: date
    start: datetime
    end: datetime

    @property
    def days(self) -> list[date]:
        count = (self.last_day - self.first_day).days + 1
        return [self.first_day + timedelta(days=i) for i in range(count)]


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which ``day`` begins in ``zone``."""
    return datetime.combine(day, time.min, tzinfo=zone).astimezone(UTC)


def _bounds(frequency: Frequency, day: date) -> tuple[date, date]:
    """First day of the period holding ``day``, and the first day after it."""
    if frequency == "daily":
        return day, day + timedelta(days=1)
    if frequency == "weekly":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=7)
    first = day.replace(day=1)
    following = (
        date(first.year + 1, 1, 1) if first.month == 12 else first.replace(month=first.month + 1)
    )
    return first, following


def _local_date(moment: datetime, zone: ZoneInfo) -> date:
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no instant; pass an aware one")
    return moment.astimezone(zone).date()


def last_closed_period(frequency: Frequency, timezone: str, now: datetime) -> Period:
    """The most recent whole day / ISO week / month that has ended by ``now``."""
    zone = ZoneInfo(timezone)
    current_first, _ = _bounds(frequency, _local_date(now, zone))
    first, following = _bounds(frequency, current_first - timedelta(days=1))
    return Period(
        frequency=frequency,
        timezone=timezone,
        first_day=first,
        last_day=following - timedelta(days=1),
        start=local_midnight(first, zone),
        end=local_midnight(following, zone),
    )


def closed_periods(frequency: Frequency, timezone: str, now: datetime, count: int) -> list[Period]:
    """The ``count`` most recent periods that have ended by ``now``, oldest first."""
    if count < 1:
        raise ValueError("count must be at least 1")
    newest = last_closed_period(frequency, timezone, now)
    periods = [newest]
    while len(periods) < count:
        # The period before one is the last one closed at its start.
        periods.append(last_closed_period(frequency, timezone, periods[-1].start))
    periods.reverse()
    return periods


def period_so_far(frequency: Frequency, timezone: str, now: datetime) -> Period:
    """The current, still open period: from its first midnight up to ``now``."""
    zone = ZoneInfo(timezone)
    today = _local_date(now, zone)
    first, _ = _bounds(frequency, today)
    return Period(
        frequency=frequency,
        timezone=timezone,
        first_day=first,
        last_day=today,
        start=local_midnight(first, zone),
        end=now.astimezone(UTC),
    )
