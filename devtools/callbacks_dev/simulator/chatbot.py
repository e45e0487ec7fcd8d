"""Chatbot sessions: a conversation creates a record in the customer's system, updates
it as slots fill, and deletes it when the user cancels (``chatbot.action``)."""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from callbacks_dev.simulator import pools
from callbacks_dev.simulator.steps import DataStep

EVENT = "chatbot.action"

# Share of actions that arrive before the bot understood the intent (``intent`` null):
# profiles that list ``intent`` in ``required_options`` skip them.
INCOMPLETE_SHARE = 0.05
DELETE_SHARE = 0.25


def chatbot_session(
    rng: random.Random, start: datetime, *, incomplete: bool | None = None
) -> list[DataStep]:
    """create → update → (sometimes) delete of one session, in order."""
    del start
    session_id = f"sess_{pools.hex_id(rng, 20)}"
    intent = pools.pick(rng, tuple(pools.CHATBOT_INTENTS))
    text, slots = pools.CHATBOT_INTENTS[intent]
    base: dict[str, Any] = {
        "session_id": session_id,
        "from": pools.indian_mobile(rng),
        "source_channel": pools.weighted(rng, (("whatsapp", 0.8), ("sms", 0.2))),
        "intent": intent,
        "text": text,
        "slots": slots,
    }
    if incomplete is None:
        incomplete = rng.random() < INCOMPLETE_SHARE
    first = {**base, "action": "create"}
    if incomplete:
        first.update(intent=None, slots={})
    steps = [DataStep(0.0, EVENT, session_id, first)]
    offset = rng.uniform(2.0, 20.0)
    steps.append(DataStep(offset, EVENT, session_id, {**base, "action": "update"}))
    if rng.random() < DELETE_SHARE:
        offset += rng.uniform(2.0, 30.0)
        cancel = {**base, "action": "delete", "text": "cancel", "slots": {}}
        steps.append(DataStep(offset, EVENT, session_id, cancel))
    return steps
