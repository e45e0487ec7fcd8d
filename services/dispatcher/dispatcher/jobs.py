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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from callbacks.wire import (
    H_ATTEMPT,
    H_DELIVERY_ID,
    H_DUE_MS,
    H_PROFILE_ID,
    H_SOURCE_OFFSET,
    H_SOURCE_PARTITION,
    H_SOURCE_TOPIC,
    Headers,
    SourcePosition,
    dead_letter_headers,
    retry_headers,
)

# A parked record waits at least this long (no tight park/return loop) and its due time
# is rounded up to a multiple of this, so a retry partition wakes for a group of parked
# records at most this often instead of once per record (each wake is a fetch).
PARK_GRANULARITY_MS = 100


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
    found = dict(headers)
    here = SourcePosition(topic, partition, offset)
    if H_ATTEMPT not in found:
        return Job(value, key, here)
    try:
        attempt = int(found[H_ATTEMPT])
        source = SourcePosition(
            found[H_SOURCE_TOPIC].decode(),
            int(found[H_SOURCE_PARTITION]),
            int(found[H_SOURCE_OFFSET]),
        )
        delivery_id = found[H_DELIVERY_ID].decode()
        profile_id = found[H_PROFILE_ID].decode()
    except (KeyError, ValueError, UnicodeDecodeError):
        return Job(value, key, here)
    return Job(value, key, source, attempt, delivery_id, profile_id)


class RetryLanes:
    """The latest due time this process wrote to each retry topic, per partition.

    Records of a retry partition are read in order, so a parked callback written behind
    a record due later waits for it (head-of-line). Under co-partitioning, partition *i*
    of every retry topic is written by the member that owns partition *i* of the
    sources, so it knows what it wrote there; after a rebalance or restart it does not,
    and a parked callback may wait behind a retry, at most its topic's delay.
    """

    def __init__(self) -> None:
        self._due_ms: dict[tuple[float, int], int] = {}

    def wrote(self, delay_s: float, partition: int, due_ms: int) -> None:
        key = (delay_s, partition)
        self._due_ms[key] = max(self._due_ms.get(key, 0), due_ms)

    def latest(self, delay_s: float, partition: int) -> int:
        return self._due_ms.get((delay_s, partition), 0)


def park(
    schedule: Sequence[float],
    wait_s: float | None,
    now_ms: int,
    latest: Callable[[float], int] = lambda _delay: 0,
) -> tuple[float, int | None]:
    """Where a parked callback goes: (retry topic delay, its own due time or None).

    ``wait_s`` is the guard's estimate of when the host has room (None: no estimate, a
    host that stopped completing); ``latest(delay)`` the latest due time already written
    to that topic's partition (``RetryLanes``). The due time is the wait, at least
    ``PARK_GRANULARITY_MS``, rounded up to a multiple of it. The topic is the shortest
    whose delay covers the wait (so the record is due by then even if its header were
    lost; the due time never exceeds it) and holds nothing due later: real retries go to
    the schedule's first delays, so parked callbacks move to a longer topic instead of
    waiting behind them. If every such topic holds a later record, the one that frees
    soonest. Without an estimate the record waits the shortest delay, as a retry would.
    """
    delays = sorted(set(schedule))  # the default schedule repeats its last delay
    if wait_s is None:
        return delays[0], None
    step = PARK_GRANULARITY_MS
    due_ms = math.ceil((now_ms + max(float(step), wait_s * 1000.0)) / step) * step
    covering = [d for d in delays if d >= wait_s] or [delays[-1]]
    delay = next((d for d in covering if latest(d) <= due_ms), None)
    if delay is None:
        delay = min(covering, key=latest)
    return delay, min(due_ms, now_ms + int(delay * 1000))


def due_ms_of(headers: Headers) -> int | None:
    """A parked record's own due time (unix ms), or None (a retry, or a bad header)."""
    for name, value in headers:
        if name == H_DUE_MS:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None
