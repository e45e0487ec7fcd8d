"""Jobs and their retry headers (``dispatcher.jobs``)."""

from __future__ import annotations

from callbacks.wire import SourcePosition
from dispatcher.jobs import Job, job_from_record


def test_retry_headers_round_trip() -> None:
    job = Job(b"{}", b"k", SourcePosition("sms.send", 2, 41))
    headers = job.retry_headers(3, "msg_x", "p-1")
    again = job_from_record(b"{}", b"k", "callbacks.retry.5s", 2, 7, headers)
    assert again == Job(b"{}", b"k", SourcePosition("sms.send", 2, 41), 3, "msg_x", "p-1")
    fresh = job_from_record(b"{}", b"k", "sms.send", 1, 9, [])
    assert fresh.attempt == 1
    assert fresh.source == SourcePosition("sms.send", 1, 9)
