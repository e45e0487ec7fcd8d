"""profile_api.listing: the cursor, the time bounds and the page size of a query string."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import orjson
import pytest
from profile_api.listing import (
    DEFAULT_LIMIT,
    NOT_A_CURSOR,
    NOT_A_MOMENT,
    QueryErrors,
    Window,
    cursor,
    decode_cursor,
    encode_cursor,
    moment,
    one_of,
    page_limit,
    utc_window,
    uuid_param,
)
from profile_api.problems import Problem

IST = timezone(timedelta(hours=5, minutes=30))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _fields(errors: QueryErrors) -> list[tuple[str, str]]:
    return [(p.field, p.message) for p in errors.problems]


@pytest.mark.parametrize(
    "key",
    ["msg_x", "8f0c1b0e-52a3-4c43-9d51-4a9f1e6c1a2b", 'quo"te <&>\n', "ünïcode ✓", ""],
)
def test_a_cursor_round_trips_its_key_and_reads_its_time_in_utc(key: str) -> None:
    at = datetime(2026, 1, 2, 10, 30, 0, 123456, tzinfo=IST)
    value = encode_cursor(at, key)
    assert "=" not in value  # unpadded base64url: safe in a query string as it is
    again, same = decode_cursor(value)
    assert (again, same) == (at, key)
    assert again.tzinfo == UTC


@pytest.mark.parametrize(
    "value",
    [
        "not-a-cursor",
        "!!",
        "WyJ4IiwgInkiXQ",  # ["x", "y"]: not a time
        _b64(b'["2026-01-02T10:00:00", "k"]'),  # a time without zone
        _b64(b'["2026-01-02T10:00:00+00:00", 7]'),  # a key that is not a string
        _b64(b'[1, "k"]'),
        _b64(b'["2026-01-02T10:00:00+00:00"]'),
        _b64(b'["2026-01-02T10:00:00+00:00", "k", "extra"]'),
        _b64(b"{}"),
        _b64(b"null"),
        "ü",
    ],
)
def test_anything_but_a_cursor_is_a_bad_cursor(value: str) -> None:
    errors = QueryErrors()
    assert cursor({"cursor": value}, errors, str) is None
    assert _fields(errors) == [("cursor", NOT_A_CURSOR)]


def test_the_cursor_key_is_read_by_the_caller() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    profile_id = uuid.uuid4()
    errors = QueryErrors()
    assert cursor({"cursor": encode_cursor(at, str(profile_id))}, errors, uuid.UUID) == (
        at,
        profile_id,
    )
    assert cursor({"cursor": encode_cursor(at, "not-a-uuid")}, errors, uuid.UUID) is None
    assert cursor({"cursor": ""}, errors, uuid.UUID) is None  # empty: absent
    assert _fields(errors) == [("cursor", NOT_A_CURSOR)]


@pytest.mark.parametrize(
    ("value", "utc", "expected"),
    [
        ("2026-01-02", True, date(2026, 1, 2)),
        ("2026-01-02T10:00:00Z", True, datetime(2026, 1, 2, 10, tzinfo=UTC)),
        ("2026-01-02T10:00:00", True, datetime(2026, 1, 2, 10, tzinfo=UTC)),
        ("2026-01-02T05:30:00+05:30", True, datetime(2026, 1, 2, 0, tzinfo=UTC)),
        ("2026-01-02", False, date(2026, 1, 2)),
        ("2026-01-02T10:00:00", False, datetime(2026, 1, 2, 10)),  # local: read later
        ("2026-01-02T05:30:00+05:30", False, datetime(2026, 1, 2, 5, 30, tzinfo=IST)),
    ],
)
def test_a_moment_is_a_day_or_an_instant(value: str, utc: bool, expected: datetime | date) -> None:
    errors = QueryErrors()
    got = moment({"from": value}, "from", errors, utc=utc)
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(got, datetime) and isinstance(expected, datetime):
        assert got.utcoffset() == expected.utcoffset()
    assert errors.problems == []


@pytest.mark.parametrize(
    "value",
    ["yesterday", "2026-13-01", "2026-01-02T25:00", "0001-01-01T00:00:00+05:00", "\x00", "<&>"],
)
def test_a_bad_moment_names_its_parameter(value: str) -> None:
    errors = QueryErrors()
    assert moment({"created_to": value}, "created_to", errors) is None
    assert _fields(errors) == [("created_to", NOT_A_MOMENT)]


def test_an_empty_or_absent_moment_is_none() -> None:
    errors = QueryErrors()
    assert moment({"to": ""}, "to", errors) is None
    assert moment({}, "to", errors) is None
    assert errors.problems == []


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, None, Window()),
        (
            date(2026, 1, 2),
            date(2026, 1, 2),
            Window(
                datetime(2026, 1, 2, tzinfo=UTC), None, datetime(2026, 1, 3, tzinfo=UTC)
            ),  # a date is its whole day
        ),
        (
            datetime(2026, 1, 2, 12, tzinfo=UTC),
            datetime(2026, 1, 3, 12, tzinfo=UTC),
            Window(datetime(2026, 1, 2, 12, tzinfo=UTC), datetime(2026, 1, 3, 12, tzinfo=UTC)),
        ),
        (None, date.max, Window()),  # no day after the last one: unbounded
    ],
)
def test_utc_window_makes_dates_whole_days(
    start: datetime | date | None, end: datetime | date | None, expected: Window
) -> None:
    assert utc_window(start, end) == expected


@pytest.mark.parametrize(
    ("value", "limit", "problems"),
    [
        (None, DEFAULT_LIMIT, []),
        ("1", 1, []),
        ("100", 100, []),
        ("0", 0, [("limit", "must be between 1 and 100")]),
        ("101", 101, [("limit", "must be between 1 and 100")]),
        ("ten", DEFAULT_LIMIT, [("limit", "must be an integer")]),
        ("", DEFAULT_LIMIT, []),  # empty is absent, as for every listing parameter
    ],
)
def test_page_limit(value: str | None, limit: int, problems: list[tuple[str, str]]) -> None:
    errors = QueryErrors()
    assert page_limit(value, errors) == limit
    assert _fields(errors) == problems


def test_every_bad_parameter_is_named_in_one_422_in_the_order_checked() -> None:
    params = {"status": "gone", "profile_id": "x", "from": "y"}
    errors = QueryErrors()
    errors.raise_any()  # nothing bad yet: no problem
    assert one_of(params, "status", ("delivered", "failed"), errors) == "gone"
    assert uuid_param(params, "profile_id", errors) is None
    assert moment(params, "from", errors) is None
    assert uuid_param({"profile_id": ""}, "profile_id", errors) is None  # empty: absent
    with pytest.raises(Problem) as raised:
        errors.raise_any()
    assert raised.value.status == 422
    assert [e.field for e in raised.value.errors] == ["status", "profile_id", "from"]
    assert _fields(errors)[0] == ("status", "must be one of delivered, failed")


def test_the_cursor_layout_is_the_json_pair_of_time_and_key() -> None:
    value = encode_cursor(datetime(2026, 1, 2, tzinfo=UTC), "k")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    assert orjson.loads(raw) == ["2026-01-02T00:00:00+00:00", "k"]
