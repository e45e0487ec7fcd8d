"""Report periods: last closed day / ISO week / month in a zone, DST included."""

from __future__ import annotations

import itertools
import zoneinfo
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from reporter.periods import (
    Frequency,
    closed_periods,
    last_closed_period,
    local_midnight,
    period_so_far,
)


def at(zone: str, y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=ZoneInfo(zone))


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


H = timedelta(hours=1)


@pytest.mark.parametrize(
    ("frequency", "zone", "now", "first", "last", "start", "hours"),
    [
        # New York springs forward on 2026-03-08 (a 23 h day), falls back on 11-01 (25 h).
        (
            "daily",
            "America/New_York",
            at("America/New_York", 2026, 3, 8, 12),
            date(2026, 3, 7),
            date(2026, 3, 7),
            utc(2026, 3, 7, 5),
            24,
        ),
        (
            "daily",
            "America/New_York",
            at("America/New_York", 2026, 3, 9, 0, 0),
            date(2026, 3, 8),
            date(2026, 3, 8),
            utc(2026, 3, 8, 5),
            23,
        ),
        (
            "daily",
            "America/New_York",
            at("America/New_York", 2026, 11, 2, 9),
            date(2026, 11, 1),
            date(2026, 11, 1),
            utc(2026, 11, 1, 4),
            25,
        ),
        # Berlin: 2026-03-29 is 23 h, 2026-10-25 is 25 h.
        (
            "daily",
            "Europe/Berlin",
            at("Europe/Berlin", 2026, 3, 30, 0, 5),
            date(2026, 3, 29),
            date(2026, 3, 29),
            utc(2026, 3, 28, 23),
            23,
        ),
        (
            "daily",
            "Europe/Berlin",
            at("Europe/Berlin", 2026, 10, 26, 7),
            date(2026, 10, 25),
            date(2026, 10, 25),
            utc(2026, 10, 24, 22),
            25,
        ),
        # Kolkata (+05:30, no DST) and Kathmandu (+05:45).
        (
            "daily",
            "Asia/Kolkata",
            utc(2026, 11, 24, 18, 29),
            date(2026, 11, 23),
            date(2026, 11, 23),
            utc(2026, 11, 22, 18, 30),
            24,
        ),
        (
            "daily",
            "Asia/Kolkata",
            utc(2026, 11, 24, 18, 30),
            date(2026, 11, 24),
            date(2026, 11, 24),
            utc(2026, 11, 23, 18, 30),
            24,
        ),
        (
            "daily",
            "Asia/Kathmandu",
            utc(2026, 11, 24, 18, 15),
            date(2026, 11, 24),
            date(2026, 11, 24),
            utc(2026, 11, 23, 18, 15),
            24,
        ),
        # Havana springs forward at midnight: 2026-03-08 00:00 does not exist there;
        # the day starts at the first instant that does (01:00 CDT = 05:00 UTC).
        (
            "daily",
            "America/Havana",
            at("America/Havana", 2026, 3, 9, 12),
            date(2026, 3, 8),
            date(2026, 3, 8),
            utc(2026, 3, 8, 5),
            23,
        ),
        # ISO weeks, Monday to Sunday; the Berlin week holding the spring change is 167 h.
        (
            "weekly",
            "Europe/Berlin",
            at("Europe/Berlin", 2026, 3, 30, 8),
            date(2026, 3, 23),
            date(2026, 3, 29),
            utc(2026, 3, 22, 23),
            167,
        ),
        (
            "weekly",
            "Europe/Berlin",
            at("Europe/Berlin", 2026, 3, 29, 23, 59),
            date(2026, 3, 16),
            date(2026, 3, 22),
            utc(2026, 3, 15, 23),
            168,
        ),
        (
            "weekly",
            "America/New_York",
            at("America/New_York", 2026, 11, 4, 1),
            date(2026, 10, 26),
            date(2026, 11, 1),
            utc(2026, 10, 26, 4),
            169,
        ),
        (
            "weekly",
            "Asia/Kolkata",
            utc(2027, 1, 3, 19),  # Mon 2027-01-04 00:30 IST
            date(2026, 12, 28),
            date(2027, 1, 3),
            utc(2026, 12, 27, 18, 30),
            168,
        ),
        # Months: March in New York (one hour short), December across the new year.
        (
            "monthly",
            "America/New_York",
            at("America/New_York", 2026, 4, 1, 0, 30),
            date(2026, 3, 1),
            date(2026, 3, 31),
            utc(2026, 3, 1, 5),
            31 * 24 - 1,
        ),
        (
            "monthly",
            "Europe/Berlin",
            at("Europe/Berlin", 2026, 11, 1, 0, 0),
            date(2026, 10, 1),
            date(2026, 10, 31),
            utc(2026, 9, 30, 22),
            31 * 24 + 1,
        ),
        (
            "monthly",
            "Asia/Kolkata",
            at("Asia/Kolkata", 2027, 1, 1, 0, 0),
            date(2026, 12, 1),
            date(2026, 12, 31),
            utc(2026, 11, 30, 18, 30),
            31 * 24,
        ),
        (
            "monthly",
            "Asia/Kolkata",
            at("Asia/Kolkata", 2026, 12, 31, 23, 59, 59),
            date(2026, 11, 1),
            date(2026, 11, 30),
            utc(2026, 10, 31, 18, 30),
            30 * 24,
        ),
        (
            "monthly",
            "UTC",
            utc(2028, 3, 1),
            date(2028, 2, 1),
            date(2028, 2, 29),
            utc(2028, 2, 1),
            29 * 24,
        ),
    ],
)
def test_last_closed_period(
    frequency: Frequency,
    zone: str,
    now: datetime,
    first: date,
    last: date,
    start: datetime,
    hours: int,
) -> None:
    period = last_closed_period(frequency, zone, now)
    assert (period.first_day, period.last_day) == (first, last)
    assert period.start == start
    assert period.end - period.start == hours * H
    assert period.end <= now
    assert period.days[0] == first
    assert period.days[-1] == last


def test_period_so_far_runs_from_the_current_periods_start_to_now() -> None:
    now = at("Asia/Kolkata", 2026, 11, 25, 15, 0)  # a Wednesday
    period = period_so_far("weekly", "Asia/Kolkata", now)
    assert period.start == utc(2026, 11, 22, 18, 30)
    assert period.end == now.astimezone(UTC)
    assert period.days == [date(2026, 11, 23), date(2026, 11, 24), date(2026, 11, 25)]
    daily = period_so_far("daily", "America/New_York", at("America/New_York", 2026, 3, 8, 4))
    assert daily.start == utc(2026, 3, 8, 5)
    assert daily.days == [date(2026, 3, 8)]


@pytest.mark.parametrize(
    ("frequency", "zone", "now", "firsts"),
    [
        # Across New York's spring-forward day: contiguous, oldest first.
        (
            "daily",
            "America/New_York",
            at("America/New_York", 2026, 3, 9, 1),
            [date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 8)],
        ),
        ("weekly", "UTC", utc(2026, 1, 7), [date(2025, 12, 22), date(2025, 12, 29)]),
        ("monthly", "Asia/Kolkata", utc(2026, 3, 1), [date(2026, 1, 1), date(2026, 2, 1)]),
        ("monthly", "Asia/Kolkata", utc(2026, 2, 28, 18, 29), [date(2026, 1, 1)]),
    ],
)
def test_closed_periods_are_the_most_recent_ones_oldest_first(
    frequency: Frequency, zone: str, now: datetime, firsts: list[date]
) -> None:
    periods = closed_periods(frequency, zone, now, len(firsts))
    assert [p.first_day for p in periods] == firsts
    assert periods[-1] == last_closed_period(frequency, zone, now)
    assert all(a.end == b.start for a, b in itertools.pairwise(periods))


def test_a_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        last_closed_period("daily", "UTC", datetime(2026, 1, 1))


def test_every_zones_midnights_fall_on_utc_quarter_hours() -> None:
    """Why counters are bucketed by UTC quarter-hour: a local day sums whole buckets."""
    for name in sorted(zoneinfo.available_timezones()):
        for day in (date(2026, 1, 15), date(2026, 7, 15)):
            midnight = local_midnight(day, ZoneInfo(name))
            assert midnight.minute % 15 == 0, name
            assert midnight.second == 0, name
