"""Outcome records on ``callbacks.outcomes``: one per attempt, and one per callback that
ends without one (``cancelled``: its profile was disabled or deleted while it waited;
``stale``: superseded under ``ordering: latest``), contract §6."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

OutcomeStatus = Literal["delivered", "retrying", "failed", "cancelled", "stale"]


class Outcome(BaseModel):
    attempt_id: str
    delivery_id: str
    event_id: str
    account_id: str
    profile_id: str
    channel: str
    event: str
    attempt: int
    status: OutcomeStatus
    final: bool
    http_status: int | None = None
    error: str | None = None
    latency_ms: float | None = None
    attempted_at: datetime
    # Where the original event record sits, so the delivery log can ask for a
    # redelivery without storing the event (and its personal data) anywhere else.
    source_topic: str | None = None
    source_partition: int | None = None
    source_offset: int | None = None


class RedeliverRequest(BaseModel):
    """A record on ``callbacks.redeliver``: deliver this callback again now.

    The dispatcher reads the original event at ``source_topic/partition/offset``,
    checks its ``event_id``, and delivers it to the profile's current configuration
    with the same ``delivery_id`` (so the same ``webhook-id``) as the next attempt.
    """

    delivery_id: str
    event_id: str
    account_id: str
    profile_id: str
    source_topic: str
    source_partition: int
    source_offset: int
    attempt: int  # the attempt number this redelivery will carry
    requested_at: datetime
