"""The headers of records on ``callbacks.retry.*`` and ``callbacks.dead``: names, builders
and readers.

A retry record keeps the original event's key and value; its headers say what the next
attempt must know (its number, the delivery id, the profile), where the original event
sits, and, for a callback parked until its host has room, its own due time. A dead letter
keeps the key and value of the record set aside; its headers say why (a reason kind and
a detail) and where that record sat. Every service that writes or reads these records
uses the names, builders and readers here, so a consumer of ``callbacks.dead`` reads one
layout whichever service wrote the letter. Header values are UTF-8 text (numbers in
decimal).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

H_ATTEMPT = "cb-attempt"
H_DELIVERY_ID = "cb-delivery-id"
H_PROFILE_ID = "cb-profile-id"
H_SOURCE_TOPIC = "cb-source-topic"
H_SOURCE_PARTITION = "cb-source-partition"
H_SOURCE_OFFSET = "cb-source-offset"
H_REASON = "cb-reason"
H_ERROR = "cb-error"
H_DUE_MS = "cb-due-ms"

Headers = Sequence[tuple[str, bytes]]


@dataclass(frozen=True)
class SourcePosition:
    """Where a record sits: its topic, partition and offset."""

    topic: str
    partition: int
    offset: int


def _source(source: SourcePosition) -> list[tuple[str, bytes]]:
    return [
        (H_SOURCE_TOPIC, source.topic.encode()),
        (H_SOURCE_PARTITION, str(source.partition).encode()),
        (H_SOURCE_OFFSET, str(source.offset).encode()),
    ]


def retry_headers(
    source: SourcePosition,
    attempt: int,
    delivery_id: str,
    profile_id: str,
    due_ms: int | None = None,
) -> list[tuple[str, bytes]]:
    """Headers of a retry record for attempt ``attempt`` of the event at ``source``;
    ``due_ms`` (unix ms) only for a parked callback."""
    headers = [
        (H_ATTEMPT, str(attempt).encode()),
        (H_DELIVERY_ID, delivery_id.encode()),
        (H_PROFILE_ID, profile_id.encode()),
        *_source(source),
    ]
    if due_ms is not None:
        headers.append((H_DUE_MS, str(due_ms).encode()))
    return headers


def dead_letter_headers(source: SourcePosition, reason: str, error: str) -> list[tuple[str, bytes]]:
    """Headers of a dead letter for the record at ``source``: ``reason`` is the kind (a
    metric label value, e.g. ``exhausted``), ``error`` the detail."""
    return [(H_REASON, reason.encode()), (H_ERROR, error.encode()), *_source(source)]


@dataclass(frozen=True)
class RetryState:
    """What a retry record's headers fix for its next attempt."""

    attempt: int
    delivery_id: str
    profile_id: str
    source: SourcePosition


def read_retry(headers: Headers) -> RetryState | None:
    """The retry state of a record, or None for a record without one (a source event) or
    whose retry headers are missing or malformed."""
    found = dict(headers)
    if H_ATTEMPT not in found:
        return None
    try:
        return RetryState(
            attempt=int(found[H_ATTEMPT]),
            delivery_id=found[H_DELIVERY_ID].decode(),
            profile_id=found[H_PROFILE_ID].decode(),
            source=SourcePosition(
                found[H_SOURCE_TOPIC].decode(),
                int(found[H_SOURCE_PARTITION]),
                int(found[H_SOURCE_OFFSET]),
            ),
        )
    except (KeyError, ValueError, UnicodeDecodeError):
        return None


def read_due_ms(headers: Headers) -> int | None:
    """A parked record's own due time (unix ms), or None (a retry, or a bad header)."""
    for name, value in headers:
        if name == H_DUE_MS:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
