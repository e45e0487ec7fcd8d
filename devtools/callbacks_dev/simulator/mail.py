"""Email lifecycles as an email API reports them: ``processed`` → ``delivered`` →
``opened`` → ``clicked``; soft and hard bounces with enhanced SMTP codes (``5.1.1``),
deferrals that retry, drops, and the occasional spam report or unsubscribe.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from callbacks_dev.simulator import pools
from callbacks_dev.simulator.steps import DataStep

EVENT = "email.send"

OUTCOME_SHARES = (
    ("delivered", 0.86),
    ("deferred_then_delivered", 0.04),
    ("bounced", 0.06),
    ("dropped", 0.02),
    ("deferred_then_bounced", 0.02),
)
OPEN_SHARE = 0.45
CLICK_SHARE = 0.3  # of opened
SPAM_SHARE = 0.01  # of delivered
UNSUBSCRIBE_SHARE = 0.02  # of opened


def email_lifecycle(
    rng: random.Random, start: datetime, *, outcome: str | None = None
) -> list[DataStep]:
    """Every status of one email, in order. ``outcome`` forces the delivery outcome.

    Email data carries no timestamps of its own; ``start`` is taken for symmetry with
    the other builders (the envelope's ``occurred_at`` is ``start`` + the offset)."""
    del start
    final = outcome or pools.weighted(rng, OUTCOME_SHARES)
    first, last = pools.person(rng)
    number = rng.randrange(10**4, 10**6)
    message_id = f"{pools.hex_id(rng, 22)}.filterdrecv-{rng.randrange(100)}-{number}"
    base: dict[str, Any] = {
        "message_id": message_id,
        "smtp_message_id": f"<{pools.hex_id(rng, 24)}@mail.example.in>",
        "to": f"{first.lower()}.{last.lower()}{rng.randrange(100)}@"
        + pools.pick(rng, pools.MAIL_DOMAINS),
        "from": pools.pick(rng, pools.MAIL_FROM),
        "subject": pools.pick(rng, pools.MAIL_SUBJECTS).format(n=number),
        "tags": pools.pick(rng, (["order", "shipping"], ["otp"], ["statement"], ["promo"])),
        "custom": {"customer_id": f"C{rng.randrange(10**7):07d}"},
    }
    steps: list[DataStep] = []
    offset = 0.0

    def add(status: str, **fields: Any) -> None:
        steps.append(DataStep(offset, EVENT, message_id, {**base, "status": status, **fields}))

    add("processed")
    if final == "dropped":
        offset += 0.1
        add("dropped", reason="Recipient previously unsubscribed")
        return steps
    attempt = 1
    if final.startswith("deferred"):
        code, response = pools.pick(rng, pools.MAIL_DEFERRALS)
        for _ in range(rng.randint(1, 2)):
            offset += rng.uniform(1.0, 5.0)
            add("deferred", smtp_status=code, smtp_response=response, attempt=attempt)
            attempt += 1
    offset += rng.uniform(0.5, 3.0)
    if final.endswith("bounced"):
        code, kind, response = pools.pick(rng, pools.MAIL_BOUNCES)
        add(
            "bounced",
            smtp_status=code,
            bounce_type=kind,
            smtp_response=response,
            reason=response.split(" ", 2)[-1],
            attempt=attempt,
        )
        return steps
    add("delivered", smtp_response="250 2.0.0 OK", smtp_status="2.0.0", attempt=attempt)
    if rng.random() < SPAM_SHARE:
        offset += rng.uniform(30.0, 300.0)
        add("spam")
        return steps
    if rng.random() >= OPEN_SHARE:
        return steps
    reader = {
        "ip": f"49.{rng.randrange(32, 48)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
        "user_agent": pools.pick(rng, pools.USER_AGENTS),
    }
    offset += rng.uniform(10.0, 600.0)
    add("opened", **reader)
    if rng.random() < CLICK_SHARE:
        offset += rng.uniform(2.0, 60.0)
        add("clicked", url=pools.pick(rng, pools.MAIL_LINKS).format(n=number), **reader)
    if rng.random() < UNSUBSCRIBE_SHARE:
        offset += rng.uniform(2.0, 60.0)
        add("unsubscribed", **reader)
    return steps
