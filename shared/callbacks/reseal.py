"""``python -m callbacks reseal``: every stored secret sealed again under the first key.

Master key rotation (README "Security"): put the new key first in
``CALLBACKS_MASTER_KEYS`` and keep the old ones after it, roll the services, run this
command, then drop the old keys. Each profile whose secrets are not all sealed (v2)
under the current key is opened, sealed again, written back and enqueued on the
outbox in one transaction per profile, so the dispatchers' caches receive the new
form through ``callbacks.profiles`` like any other change. Profiles already current are
left alone, so the command can run again after an interruption and does only the rest.
A profile whose secrets open under none of the held keys is reported and skipped.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import asyncpg

from callbacks.db import create_pool
from callbacks.logging import get_logger
from callbacks.models.profiles import ProfileRecord, open_secrets, seal_secrets, secret_values
from callbacks.profile_state import enqueue_profile_change
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings

log = get_logger(__name__)


@dataclass
class ResealReport:
    resealed: int = 0
    current: int = 0
    failed: list[str] = field(default_factory=list)  # profile ids whose secrets did not open


async def reseal(settings: Settings) -> ResealReport:
    box = SecretBox(settings.master_keys_bytes())
    topic = settings.topics.profiles
    report = ResealReport()
    pool = await create_pool(settings.require_database_url(), max_size=2)
    try:
        ids = [row["id"] for row in await pool.fetch("SELECT id FROM callback_profiles")]
        for profile_id in ids:
            async with pool.acquire() as conn, conn.transaction():
                await _reseal_one(conn, box, topic, profile_id, report)
    finally:
        await pool.close()
    log.info(
        "reseal_finished",
        resealed=report.resealed,
        current=report.current,
        failed=len(report.failed),
        key_id=box.current_key_id,
    )
    return report


async def _reseal_one(
    conn: asyncpg.Connection,
    box: SecretBox,
    topic: str,
    profile_id: uuid.UUID,
    report: ResealReport,
) -> None:
    document = await conn.fetchval(
        "SELECT document FROM callback_profiles WHERE id = $1 FOR UPDATE", profile_id
    )
    if document is None:  # deleted since the id list was read
        return
    record = ProfileRecord.model_validate(document)
    if not any(box.needs_reseal(value) for value in secret_values(record)):
        report.current += 1
        return
    try:
        opened = open_secrets(record, box.open)
    except ValueError:
        report.failed.append(str(profile_id))
        log.warning("reseal_unopenable", profile_id=str(profile_id))
        return
    sealed = seal_secrets(opened, box.seal).model_dump(mode="json")
    await conn.execute(
        "UPDATE callback_profiles SET document = $2 WHERE id = $1", profile_id, sealed
    )
    await enqueue_profile_change(conn, topic, profile_id, sealed)
    report.resealed += 1
