"""One unit of work (an event to deliver to its profile) and how it rides on retry topics.

A retry record carries the original event bytes as value (same key, so it stays in the
co-partitioned partition) and, in headers, what the next attempt must know: its number,
the delivery id, the profile, and where the original event sits (for outcomes and
redelivery requests).

A *parked* record (a callback deferred because its throttled host had enough queued
work, ``host_busy``) also carries its own due time, ``cb-due-ms``: about when the host
will have room for it. Its topic's fixed delay would bring it back seconds after the
host ran dry; the header brings it back in time to keep the host busy. Writing the due
time into the record keeps parking durable: the retry record is acknowledged before the
source offset commits, and after a crash it comes back at the same time, from any member.
"""

from __future__ import annotations

from dataclasses import dataclass

from callbacks.wire import (
    Headers,
    SourcePosition,
    dead_letter_headers,
    read_retry,
    retry_headers,
)


@dataclass(frozen=True)
class Job:
    """An event record plus, for retries and redeliveries, what earlier attempts fixed."""

    value: bytes | None
    key: bytes | None
    source: SourcePosition
    attempt: int = 1
    delivery_id: str | None = None
    profile_id: str | None = None

    def retry_headers(
        self, attempt: int, delivery_id: str, profile_id: str, due_ms: int | None = None
    ) -> list[tuple[str, bytes]]:
        return retry_headers(self.source, attempt, delivery_id, profile_id, due_ms)

    def dead_headers(self, reason: str, error: str) -> list[tuple[str, bytes]]:
        return dead_letter_headers(self.source, reason, error)


def job_from_record(  # noqa: PLR0917 - the fields of a consumer record
    value: bytes | None,
    key: bytes | None,
    topic: str,
    partition: int,
    offset: int,
    headers: Headers,
) -> Job:
    """A source record is attempt 1; a retry record carries its attempt in headers.

    Retry headers that are missing or malformed make it a fresh attempt 1 at the retry
    record's own position: delivering once more is safer than dropping it.
    """
    here = SourcePosition(topic, partition, offset)
    retry = read_retry(headers)
    if retry is None:
        return Job(value, key, here)
    return Job(value, key, retry.source, retry.attempt, retry.delivery_id, retry.profile_id)
