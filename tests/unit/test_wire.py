"""The header layout of retry records and dead letters (callbacks.wire), byte for byte."""

from __future__ import annotations

import pytest
from callbacks.wire import SourcePosition, dead_letter_headers, retry_headers

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
