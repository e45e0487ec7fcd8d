"""SMS lifecycles as an Indian SMS gateway reports them: ``accepted`` → ``sent`` →
``delivered``, or a final ``undelivered``/``expired`` (after ``sent``) or ``rejected``
(DND or DLT scrubbing, before anything is sent), with raw SMPP ``stat`` and error codes.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from callbacks_dev.simulator import pools
from callbacks_dev.simulator.steps import DataStep

EVENT = "sms.send"

# Shares of final outcomes on a healthy transactional route.
OUTCOME_SHARES = (("delivered", 0.88), ("undelivered", 0.06), ("expired", 0.03), ("rejected", 0.03))


def sms_lifecycle(
    rng: random.Random, start: datetime, *, outcome: str | None = None
) -> list[DataStep]:
    """Every status of one SMS, in order. ``outcome`` forces the final status."""
    final = outcome or pools.weighted(rng, OUTCOME_SHARES)
    message_id = f"{pools.hex_id(rng)}:1"
    operator, mcc, mnc, circle = pools.pick(rng, pools.OPERATORS)
    sms_type = pools.weighted(rng, pools.SMS_TYPES)
    parts = pools.weighted(rng, ((1, 0.8), (2, 0.15), (3, 0.05)))
    base: dict[str, Any] = {
        "message_id": message_id,
        "batch_id": pools.uuid4(rng),
        "to": pools.indian_mobile(rng),
        "sender": pools.pick(rng, pools.SMS_SENDERS),
        "submitted_at": pools.iso(start),
        "units": parts,
        "part": 1,
        "parts": parts,
        "price": round(parts * pools.SMS_TEXT_PRICE_INR, 4),
        "currency": "INR",
        "mcc": mcc,
        "mnc": mnc,
        "operator": operator,
        "circle": circle,
        "type": sms_type,
        "dlt_template_id": f"1107{rng.randrange(10**15):015d}",
        "custom": {"order_id": f"OD{rng.randrange(10**6):06d}"},
    }
    steps = [
        DataStep(
            0.0,
            EVENT,
            message_id,
            {**base, "status": "accepted", "dlr_status": "ACCEPTD", "status_code": "000"},
        )
    ]
    if final == "rejected":
        steps.append(_final(base, rng, pools.SMS_REJECTED, 0.3, start))
        return steps
    sent_offset = rng.uniform(0.2, 1.5)
    sent_at = pools.iso(start + timedelta(seconds=sent_offset))
    steps.append(
        DataStep(
            sent_offset,
            EVENT,
            message_id,
            {
                **base,
                "status": "sent",
                "dlr_status": "ENROUTE",
                "status_code": "000",
                "sent_at": sent_at,
            },
        )
    )
    done_offset = sent_offset + rng.uniform(1.0, 8.0)
    if final == "delivered":
        done_at = pools.iso(start + timedelta(seconds=done_offset))
        data = {
            **base,
            "status": "delivered",
            "dlr_status": "DELIVRD",
            "status_code": "000",
            "status_description": "Delivered to handset",
            "sent_at": sent_at,
            "done_at": done_at,
        }
        steps.append(DataStep(done_offset, EVENT, message_id, data))
        return steps
    table = pools.SMS_EXPIRED if final == "expired" else pools.SMS_UNDELIVERED
    if final == "expired":
        done_offset += rng.uniform(30.0, 120.0)
    step = _final(base, rng, table, done_offset, start)
    step.data["sent_at"] = sent_at
    steps.append(step)
    return steps


def _final(
    base: dict[str, Any],
    rng: random.Random,
    table: tuple[tuple[str, str, str, str], ...],
    offset: float,
    start: datetime,
) -> DataStep:
    status, stat, code, description = pools.pick(rng, table)
    data = {
        **base,
        "status": status,
        "dlr_status": stat,
        "status_code": code,
        "status_description": description,
        "error_code": code,
        "error_message": description,
        "done_at": pools.iso(start + timedelta(seconds=offset)),
    }
    return DataStep(offset, EVENT, base["message_id"], data)
