"""Auto-disable: a warning email at the first final failure of a streak, and a disable
(reason ``failing``) with an email once the streak is ``auto_disable_after`` old; a
success resets the clock; replaying the outcomes changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
from aiokafka import AIOKafkaProducer

from tests.integration.receiver.helpers import RECIPIENT, HealthRig, account_with_recipient
from tests.integration.reporter.helpers import Mailbox, create_profile, make_outcome, produce

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def failed(account: uuid.UUID, profile: uuid.UUID, at: datetime, status: int = 500) -> object:
    return make_outcome(
        account, profile, status="failed", http_status=status, error="boom", attempted_at=at
    )


async def test_failing_profile_is_warned_then_disabled_and_replay_changes_nothing(
    rig: HealthRig,
    pool: asyncpg.Pool,
    producer: AIOKafkaProducer,
    smtp_server: tuple[Mailbox, int],
) -> None:
    mailbox = smtp_server[0]
    account = await account_with_recipient(pool)
    profile = await create_profile(pool, account, "Legacy SMS handler")
    # Rows made before the profile's outcomes: evidence must be newer than the profile.
    await pool.execute(
        "UPDATE callback_profiles SET updated_at = $2 WHERE id = $1", profile, T0 - timedelta(1)
    )
    topic = rig.settings.topics.outcomes

    await produce(producer, topic, [failed(account, profile, T0)])  # type: ignore[list-item]
    await rig.ingest()
    assert await rig.notifier.send_pending() == 1
    warning = mailbox.messages[-1]
    assert "Legacy SMS handler is failing" in str(warning["Subject"])
    assert RECIPIENT in str(warning["To"])

    # Still inside the window: another failure neither warns again nor disables.
    await produce(producer, topic, [failed(account, profile, T0 + timedelta(seconds=3))])  # type: ignore[list-item]
    await rig.ingest()
    assert await rig.notifier.send_pending() == 0
    assert await pool.fetchval("SELECT enabled FROM callback_profiles WHERE id = $1", profile)

    # Six seconds into the streak (by attempt time): disabled, with its outbox row.
    await produce(producer, topic, [failed(account, profile, T0 + timedelta(seconds=6))])  # type: ignore[list-item]
    await rig.ingest()
    row = await pool.fetchrow(
        "SELECT enabled, document FROM callback_profiles WHERE id = $1", profile
    )
    assert row is not None
    assert row["enabled"] is False
    assert row["document"]["enabled"] is False
    assert row["document"]["disabled_reason"] == "failing"
    assert row["document"]["disabled_at"]
    outbox = await pool.fetchrow(
        "SELECT topic, payload FROM profile_outbox WHERE profile_id = $1 ORDER BY id DESC",
        profile,
    )
    assert outbox["topic"] == rig.settings.topics.profiles
    assert outbox["payload"]["disabled_reason"] == "failing"
    assert await rig.notifier.send_pending() == 1
    assert "disabled" in str(mailbox.messages[-1]["Subject"])
    assert len(mailbox.messages) == 2
    assert (
        rig.metrics.registry.get_sample_value(
            "callbacks_profiles_disabled_total", {"reason": "failing"}
        )
        == 1.0
    )

    # A replay from the beginning (another group) decides nothing new.
    await rig.ingest(group=f"{rig.settings.topic_prefix}replay")
    assert await rig.notifier.send_pending() == 0
    assert (
        await pool.fetchval("SELECT count(*) FROM profile_notices WHERE profile_id = $1", profile)
        == 2
    )


async def test_a_success_resets_the_clock(
    rig: HealthRig, pool: asyncpg.Pool, producer: AIOKafkaProducer
) -> None:
    account = await account_with_recipient(pool)
    profile = await create_profile(pool, account, "Flaky")
    await pool.execute(
        "UPDATE callback_profiles SET updated_at = $2 WHERE id = $1", profile, T0 - timedelta(1)
    )
    ok = make_outcome(account, profile, attempted_at=T0 + timedelta(seconds=4))
    await produce(
        producer,
        rig.settings.topics.outcomes,
        [failed(account, profile, T0), ok, failed(account, profile, T0 + timedelta(seconds=8))],  # type: ignore[list-item]
    )
    await rig.ingest()
    state = await pool.fetchrow("SELECT * FROM profile_health WHERE profile_id = $1", profile)
    assert state is not None
    assert state["failing_since"] == T0 + timedelta(seconds=8)
    assert await pool.fetchval("SELECT enabled FROM callback_profiles WHERE id = $1", profile)
    # The first streak ended inside the batch: one warning, for the streak still open.
    assert await pool.fetchval(
        "SELECT array_agg(key_at) FROM profile_notices"
        " WHERE profile_id = $1 AND kind = 'failing_warning'",
        profile,
    ) == [T0 + timedelta(seconds=8)]
    # Sent here, not left pending for another test's reporter to pick up.
    assert await rig.notifier.send_pending() == 1
