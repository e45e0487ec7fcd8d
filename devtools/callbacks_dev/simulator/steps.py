"""One step of a simulated message's life, before it is wrapped in an envelope."""

from __future__ import annotations

from typing import Any, NamedTuple


class DataStep(NamedTuple):
    """``data`` of one event, ``offset_s`` after the lifecycle started, keyed by ``key``
    (the message id, or template_id / business_number / session_id)."""

    offset_s: float
    event: str
    key: str
    data: dict[str, Any]
