"""When a failed attempt is tried again, and after how long (contract §3a, §6). Pure.

The dispatcher asks two questions of every failed attempt: may it be retried at all
(``retry_on``, 410, the schedule's length), and which retry topic takes it (the
schedule's next delay, stretched by ``Retry-After`` on 429/503 but never beyond the
delay after that). Keeping the arithmetic here lets it be tested with plain numbers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

from callbacks.failures import FailureKind

RetryOn = Literal["all_failures", "transient_only"]

GONE = 410
RETRY_AFTER_STATUSES = frozenset({429, 503})


def is_transient(status: int | None) -> bool:
    """Timeouts and connection errors (no status), 408, 429 and 5xx may pass by themselves."""
    return status is None or status in (408, 429) or status >= 500


@dataclass(frozen=True)
class RetryDecision:
    """``delay_s`` is the retry topic's delay, or None when the attempt is final.

    ``final_reason`` says why there is no retry (the dead letter's reason): ``gone``
    (410), ``not_retryable`` (``transient_only`` and a permanent status), ``exhausted``
    (schedule used up), or a final failure kind (``FailureKind.final``).
    """

    delay_s: float | None
    final_reason: Literal["gone", "not_retryable", "exhausted"] | FailureKind | None = None


def decide(
    *,
    status: int | None,
    kind: FailureKind | None = None,
    attempt: int,
    schedule: Sequence[float],
    retry_on: RetryOn,
    retry_after_s: float | None = None,
) -> RetryDecision:
    """The fate of failed attempt number ``attempt`` (1-based).

    ``schedule[i]`` is the delay before attempt ``i + 2``. A ``Retry-After`` longer
    than the next delay moves the retry to the delay after it (the cap): retry topics
    have fixed delays, so the next-but-one topic is the longest wait we can honour.
    A held-back callback (``kind.held``) is not an attempt and never comes here.
    """
    if kind is not None and kind.final:
        return RetryDecision(None, kind)
    if status == GONE:
        return RetryDecision(None, "gone")
    if retry_on == "transient_only" and not is_transient(status):
        return RetryDecision(None, "not_retryable")
    if attempt > len(schedule):
        return RetryDecision(None, "exhausted")
    delay = schedule[attempt - 1]
    if (
        retry_after_s is not None
        and status in RETRY_AFTER_STATUSES
        and retry_after_s > delay
        and attempt < len(schedule)
    ):
        delay = max(delay, schedule[attempt])
    return RetryDecision(delay)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date).

    Unparseable or negative values are ignored (None) rather than trusted.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        return float(int(text))
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if math.isnan(seconds):
        return None
    return max(seconds, 0.0)


def due_in_s(record_timestamp_ms: int, delay_s: float, now_ms: int) -> float:
    """How long until a retry record written at ``record_timestamp_ms`` is due (≤ 0: now)."""
    return (record_timestamp_ms + delay_s * 1000.0 - now_ms) / 1000.0
