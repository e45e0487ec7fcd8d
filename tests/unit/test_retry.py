"""Retry decisions and Retry-After parsing (contract §3a, §6)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from callbacks.retry import RetryDecision, decide, due_in_s, is_transient, parse_retry_after

SCHEDULE = (5.0, 30.0, 120.0)


@pytest.mark.parametrize(
    ("status", "attempt", "retry_on", "retry_after", "expected"),
    [
        (500, 1, "all_failures", None, RetryDecision(5.0)),
        (None, 2, "all_failures", None, RetryDecision(30.0)),
        (404, 3, "all_failures", None, RetryDecision(120.0)),
        (500, 4, "all_failures", None, RetryDecision(None, "exhausted")),
        (410, 1, "all_failures", None, RetryDecision(None, "gone")),
        (410, 1, "transient_only", None, RetryDecision(None, "gone")),
        (404, 1, "transient_only", None, RetryDecision(None, "not_retryable")),
        (302, 1, "transient_only", None, RetryDecision(None, "not_retryable")),
        (302, 1, "all_failures", None, RetryDecision(5.0)),
        (408, 1, "transient_only", None, RetryDecision(5.0)),
        (429, 1, "transient_only", None, RetryDecision(5.0)),
        (503, 1, "transient_only", None, RetryDecision(5.0)),
        (None, 1, "transient_only", None, RetryDecision(5.0)),
        # Retry-After longer than the next delay: the next-but-one delay (the cap).
        (429, 1, "all_failures", 10.0, RetryDecision(30.0)),
        (503, 1, "all_failures", 3600.0, RetryDecision(30.0)),
        # Retry-After shorter than the next delay changes nothing.
        (429, 1, "all_failures", 1.0, RetryDecision(5.0)),
        # Only 429 and 503 carry a Retry-After we honour.
        (500, 1, "all_failures", 10.0, RetryDecision(5.0)),
        # On the last delay there is no longer one to move to.
        (429, 3, "all_failures", 999.0, RetryDecision(120.0)),
    ],
)
def test_decide(
    status: int | None,
    attempt: int,
    retry_on: str,
    retry_after: float | None,
    expected: RetryDecision,
) -> None:
    got = decide(
        status=status,
        attempt=attempt,
        schedule=SCHEDULE,
        retry_on=retry_on,  # type: ignore[arg-type]
        retry_after_s=retry_after,
    )
    assert got == expected


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (None, True),
        (408, True),
        (429, True),
        (500, True),
        (599, True),
        (400, False),
        (404, False),
        (301, False),
        (410, False),
    ],
)
def test_is_transient(status: int | None, transient: bool) -> None:
    assert is_transient(status) is transient


NOW = datetime(2026, 11, 24, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("120", 120.0),
        (" 7 ", 7.0),
        ("-5", None),
        ("soon", None),
        ("1.5", None),
        ("Tue, 24 Nov 2026 10:00:30 GMT", 30.0),
        ("Tue, 24 Nov 2026 09:00:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_due_in() -> None:
    assert due_in_s(1_000, 0.2, 1_100) == pytest.approx(0.1)
    assert due_in_s(1_000, 0.2, 1_300) == pytest.approx(-0.1)
