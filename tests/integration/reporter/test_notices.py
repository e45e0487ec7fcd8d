"""Profile notices that cannot be built are set aside; the others still go out."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from callbacks.db import create_pool
from callbacks.settings import Settings
from pydantic import SecretStr
from reporter.metrics import ReporterMetrics
from reporter.notices import Notifier
from structlog.testing import capture_logs

from tests.integration.reporter.helpers import Mailbox, create_account, create_profile

AT = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


# The notifier sends every pending notice in the database: one of this test alone.
@pytest.fixture
async def pool(settings: Settings, own_database: str) -> AsyncIterator[asyncpg.Pool]:
    own = await create_pool(own_database)
    try:
        yield own
    finally:
        await own.close()


async def notice(pool: asyncpg.Pool, account: uuid.UUID, profile: uuid.UUID) -> int:
    notice_id: int = await pool.fetchval(
        "INSERT INTO profile_notices (account_id, profile_id, kind, key_at, detail)"
        " VALUES ($1, $2, 'disabled_gone', $3, 'endpoint_gone') RETURNING id",
        account,
        profile,
        AT,
    )
    return notice_id


async def test_a_notice_whose_subject_cannot_be_built_is_set_aside(
    settings: Settings,
    pool: asyncpg.Pool,
    smtp_server: tuple[Mailbox, int],
    metrics: ReporterMetrics,
) -> None:
    mailbox, port = smtp_server
    account = await create_account(pool)
    await pool.execute(
        "INSERT INTO report_settings (account_id, enabled, frequency, recipients, timezone)"
        " VALUES ($1, false, 'daily', $2, 'UTC')",
        account,
        ["ops@customer.test"],
    )
    # A CR/LF in a title cannot go into a Subject header (it would inject headers).
    bad = await notice(pool, account, await create_profile(pool, account, "Hi\r\nBcc: x@y.z"))
    good = await notice(pool, account, await create_profile(pool, account, "Orders"))
    own = settings.model_copy(
        update={"database_url": SecretStr("unused"), "smtp_port": port, "smtp_from": "a@b.c"}
    )
    notifier = Notifier(own, pool, metrics)

    with capture_logs() as logs:
        assert await notifier.send_pending() == 1
    assert [m["Subject"] for m in mailbox.messages] == [
        "Callback profile Orders disabled: endpoint returned 410 Gone"
    ]
    [line] = [e for e in logs if e["event"] == "profile_notice_set_aside"]
    assert line["notice"] == bad
    assert (
        metrics.registry.get_sample_value(
            "callbacks_report_failures_total", {"stage": "notice_build"}
        )
        == 1
    )
    rows = {
        r["id"]: r
        for r in await pool.fetch("SELECT id, sent_at, failed_at, last_error FROM profile_notices")
    }
    assert rows[bad]["failed_at"] is not None
    assert rows[bad]["sent_at"] is None
    assert "linefeed" in rows[bad]["last_error"]
    assert rows[good]["sent_at"] is not None
    # Set aside for good: the next pass neither retries it nor fails on it.
    assert await notifier.send_pending() == 0
    assert len(mailbox.messages) == 1
