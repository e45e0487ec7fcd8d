"""Changing a saved profile's state from outside the API: "disable it, with a reason".

The reporter decides that a profile must be disabled (its endpoint answered ``410``, or
it kept failing); the profile-api owns the row and its outbox. Services must not import
each other, so the SQL of that change lives here, in the shared library: the row, its
document and an outbox row for the profile topic are written in the caller's
transaction, and ``NOTIFY`` wakes the API's relay at commit, so the dispatchers' caches
learn it within about a second (contract §3: a saved change governs deliveries in 1 s).

The document is changed as JSON (``jsonb ||``), never parsed into a model: its secrets
stay sealed and this module needs no master key.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from callbacks.models.profiles import DisabledReason

# The channel the profile-api's outbox relay LISTENs on; every profile change NOTIFYs it.
OUTBOX_CHANNEL = "callbacks_profile_outbox"


def _iso(at: datetime) -> str:
    """A timestamp the way pydantic writes it in JSON mode (``Z`` for UTC)."""
    return at.isoformat().replace("+00:00", "Z")


async def enqueue_profile_change(
    conn: asyncpg.Connection, topic: str, profile_id: uuid.UUID, payload: dict[str, Any] | None
) -> None:
    """The outbox row of a change (``None``: a tombstone) and the relay's wake-up."""
    await conn.execute(
        "INSERT INTO profile_outbox (topic, profile_id, payload) VALUES ($1, $2, $3)",
        topic,
        profile_id,
        payload,
    )
    await conn.execute("SELECT pg_notify($1, $2)", OUTBOX_CHANNEL, topic)


async def disable_profile(
    conn: asyncpg.Connection,
    *,
    profile_id: uuid.UUID,
    reason: DisabledReason,
    evidence_at: datetime,
    now: datetime,
    topic: str,
) -> bool:
    """Disable an enabled profile in the caller's transaction; True if it changed.

    ``evidence_at`` is when the endpoint showed the problem (the attempt time). A
    profile changed after that (re-enabled, URL fixed) is left alone: the evidence is
    about a configuration that no longer exists, and a replayed old outcome must not
    undo the user's re-enable.
    """
    row = await conn.fetchrow(
        "SELECT enabled, updated_at, document FROM callback_profiles WHERE id = $1 FOR UPDATE",
        profile_id,
    )
    if row is None or not row["enabled"] or row["updated_at"] > evidence_at:
        return False
    document: dict[str, Any] = {
        **row["document"],
        "enabled": False,
        "disabled_reason": reason,
        "disabled_at": _iso(now),
        "updated_at": _iso(now),
    }
    await conn.execute(
        "UPDATE callback_profiles SET enabled = false, document = $2, updated_at = $3"
        " WHERE id = $1",
        profile_id,
        document,
        now,
    )
    await enqueue_profile_change(conn, topic, profile_id, document)
    return True
