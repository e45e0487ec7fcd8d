"""Outcome records on ``callbacks.outcomes``: one per attempt (contract §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

OutcomeStatus = Literal["delivered", "retrying", "failed"]


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
