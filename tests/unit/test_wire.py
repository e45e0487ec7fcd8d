"""The header layout of retry records and dead letters (callbacks.wire), byte for byte."""

from __future__ import annotations

import pytest
from callbacks.wire import (
    RetryState,
    SourcePosition,
    dead_letter_headers,
    read_due_ms,
    read_retry,
    retry_headers,
)

SOURCE = SourcePosition("sms.send", 2, 41)


def test_retry_headers_name_the_attempt_the_delivery_and_the_source() -> None:
    assert retry_headers(SOURCE, 3, "msg_x", "p-1") == [
        ("cb-attempt", b"3"),
        ("cb-delivery-id", b"msg_x"),
        ("cb-profile-id", b"p-1"),
        ("cb-source-topic", b"sms.send"),
        ("cb-source-partition", b"2"),
        ("cb-source-offset", b"41"),
    ]


def test_a_parked_record_carries_its_due_time_last() -> None:
    headers = retry_headers(SOURCE, 1, "msg_x", "p-1", due_ms=1_700_000_000_100)
    assert headers[-1] == ("cb-due-ms", b"1700000000100")
    assert headers[:-1] == retry_headers(SOURCE, 1, "msg_x", "p-1")


@pytest.mark.parametrize(
    ("reason", "error"),
    [
        ("exhausted", "HTTP 500"),
        ("invalid_outcome", "record: Invalid JSON"),
        ("not_retryable", 'HTTP 400: "quoted" <b>&amp;</b>'),
        ("expired", "zeit überschritten ✓"),  # the detail is UTF-8
        ("too_large", ""),
    ],
)
def test_dead_letter_headers_give_the_reason_the_detail_and_the_source(
    reason: str, error: str
) -> None:
    assert dead_letter_headers(SOURCE, reason, error) == [
        ("cb-reason", reason.encode()),
        ("cb-error", error.encode("utf-8")),
        ("cb-source-topic", b"sms.send"),
        ("cb-source-partition", b"2"),
        ("cb-source-offset", b"41"),
    ]


def test_a_retry_record_reads_back_what_its_headers_were_built_from() -> None:
    state = read_retry(retry_headers(SOURCE, 3, "msg_x", "p-1", due_ms=5))
    assert state == RetryState(attempt=3, delivery_id="msg_x", profile_id="p-1", source=SOURCE)
    assert read_due_ms(retry_headers(SOURCE, 3, "msg_x", "p-1", due_ms=5)) == 5


def _with(headers: list[tuple[str, bytes]], name: str, value: bytes) -> list[tuple[str, bytes]]:
    return [(n, value if n == name else v) for n, v in headers]


@pytest.mark.parametrize(
    "headers",
    [
        [],  # a source event
        [("cb-attempt", b"2")],  # the rest missing
        _with(retry_headers(SOURCE, 2, "m", "p"), "cb-attempt", b"x"),
        _with(retry_headers(SOURCE, 2, "m", "p"), "cb-delivery-id", b"\xff"),  # not UTF-8
        _with(retry_headers(SOURCE, 2, "m", "p"), "cb-source-offset", b"-"),
    ],
)
def test_missing_or_malformed_retry_headers_read_as_none(headers: list[tuple[str, bytes]]) -> None:
    assert read_retry(headers) is None


def test_a_bad_or_absent_due_time_reads_as_none() -> None:
    assert read_due_ms(retry_headers(SOURCE, 1, "m", "p")) is None
    assert read_due_ms([("cb-due-ms", b"soon")]) is None
