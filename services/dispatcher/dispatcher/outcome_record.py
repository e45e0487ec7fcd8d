"""The outcome record of one attempt, or of a callback's ending without one (contract
§6), as the bytes put on ``callbacks.outcomes``.

Serialised from a dict rather than through the ``Outcome`` model: this runs once per
attempt, and a model round trip costs more than the rest of the record.
"""

from __future__ import annotations

import os
from datetime import datetime

import orjson
from callbacks.models.events import Event
from callbacks.models.outcomes import OutcomeStatus
from callbacks.sender import AttemptResult

from dispatcher.jobs import Job
from dispatcher.rendering import event_channel


def outcome_record(
    job: Job,
    event: Event,
    *,
    profile_id: str,
    delivery_id: str,
    status: OutcomeStatus,
    final: bool,
    result: AttemptResult,
    attempted_at: datetime,
    latency: bool = True,
) -> bytes:
    """``latency`` False: no request was made (``cancelled``, an internal failure), so
    ``latency_ms`` is null rather than a zero that would read as a fast answer."""
    return orjson.dumps(
        {
            "attempt_id": os.urandom(16).hex(),
            "delivery_id": delivery_id,
            "event_id": event.event_id,
            "account_id": event.account_id,
            "profile_id": profile_id,
            "channel": event_channel(event),
            "event": event.event,
            "attempt": job.attempt,
            "status": status,
            "final": final,
            "http_status": result.status,
            "error": result.error,
            "latency_ms": round(result.latency_ms, 3) if latency else None,
            "attempted_at": attempted_at,
            "source_topic": job.source.topic,
            "source_partition": job.source.partition,
            "source_offset": job.source.offset,
        }
    )
