"""Profiles in PostgreSQL, each change written with its outbox row in one transaction.

Records leave this module with secrets in clear and enter it the same way; sealing
under the master key happens here, at the storage edge, so the stored document and
the outbox payload (what the profile topic carries) are always sealed.

Every write ends with ``pg_notify`` on :data:`OUTBOX_CHANNEL`; PostgreSQL delivers it
at commit, which wakes the relay (a change must govern deliveries within 1 s).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from callbacks.models.profiles import ProfileRecord, open_secrets, seal_secrets
from callbacks.profile_state import OUTBOX_CHANNEL
from callbacks.secretbox import SecretBox

__all__ = [
    "OUTBOX_CHANNEL",
    "Change",
    "ListQuery",
    "ProfileQuotaExceeded",
    "ProfileStore",
    "escape_like",
]

Change = Callable[[ProfileRecord], ProfileRecord]


@dataclass(frozen=True)
class ListQuery:
    """A validated listing request (see ``routes.profiles.parse_list_query``)."""

    limit: int
    title: str | None = None
    method: str | None = None
    channel: str | None = None
    created_from: datetime | None = None  # inclusive
    created_before: datetime | None = None  # exclusive (an inclusive "to" made exclusive)
    created_to: datetime | None = None  # inclusive
    after: tuple[datetime, uuid.UUID] | None = None  # cursor: the last item of the page before


class ProfileQuotaExceeded(Exception):
    """The account holds its maximum number of profiles already."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} profiles per account")
        self.limit = limit


def escape_like(text: str) -> str:
    """``text`` as a literal inside an ILIKE pattern (``%`` and ``_`` match themselves)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class ProfileStore:
    def __init__(self, pool: asyncpg.Pool, box: SecretBox, topic: str) -> None:
        self._pool = pool
        self._box = box
        self._topic = topic  # the profiles topic this deployment's relay publishes to

    def _sealed_document(self, record: ProfileRecord) -> dict[str, Any]:
        document: dict[str, Any] = seal_secrets(record, self._box.seal).model_dump(mode="json")
        return document

    def _opened(self, document: dict[str, Any]) -> ProfileRecord:
        return open_secrets(ProfileRecord.model_validate(document), self._box.open)

    async def _enqueue(
        self, conn: asyncpg.Connection, profile_id: str, payload: dict[str, Any] | None
    ) -> None:
        await conn.execute(
            "INSERT INTO profile_outbox (topic, profile_id, payload) VALUES ($1, $2, $3)",
            self._topic,
            uuid.UUID(profile_id),
            payload,
        )
        await conn.execute("SELECT pg_notify($1, $2)", OUTBOX_CHANNEL, self._topic)

    async def create(self, record: ProfileRecord, *, max_profiles: int | None = None) -> None:
        """Insert ``record``; ``ProfileQuotaExceeded`` if the account has ``max_profiles``.

        The account row is locked first, so concurrent creates count one after another."""
        document = self._sealed_document(record)
        account = uuid.UUID(record.account_id)
        async with self._pool.acquire() as conn, conn.transaction():
            if max_profiles is not None:
                await conn.execute("SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE", account)
                count = await conn.fetchval(
                    "SELECT count(*) FROM callback_profiles WHERE account_id = $1", account
                )
                if count >= max_profiles:
                    raise ProfileQuotaExceeded(max_profiles)
            await conn.execute(
                """INSERT INTO callback_profiles
                       (id, account_id, title, channel, method, enabled, document,
                        created_at, updated_at)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
                uuid.UUID(record.id),
                account,
                record.title,
                record.channel,
                record.method,
                record.enabled,
                document,
                record.created_at,
                record.updated_at,
            )
            await self._enqueue(conn, record.id, document)

    async def get(self, account: str, profile_id: uuid.UUID) -> ProfileRecord | None:
        document = await self._pool.fetchval(
            "SELECT document FROM callback_profiles WHERE id = $1 AND account_id = $2",
            profile_id,
            uuid.UUID(account),
        )
        return None if document is None else self._opened(document)

    async def update(
        self, account: str, profile_id: uuid.UUID, change: Change
    ) -> ProfileRecord | None:
        """Apply ``change`` to the stored record under a row lock; None if not found.

        ``change`` may raise (a 422); the transaction then rolls back untouched.
        """
        async with self._pool.acquire() as conn, conn.transaction():
            document = await conn.fetchval(
                """SELECT document FROM callback_profiles
                   WHERE id = $1 AND account_id = $2 FOR UPDATE""",
                profile_id,
                uuid.UUID(account),
            )
            if document is None:
                return None
            record = change(self._opened(document))
            sealed = self._sealed_document(record)
            await conn.execute(
                """UPDATE callback_profiles
                   SET title = $2, method = $3, enabled = $4, document = $5, updated_at = $6
                   WHERE id = $1""",
                profile_id,
                record.title,
                record.method,
                record.enabled,
                sealed,
                record.updated_at,
            )
            await self._enqueue(conn, record.id, sealed)
            return record

    async def delete(self, account: str, profile_id: uuid.UUID) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            deleted = await conn.fetchval(
                "DELETE FROM callback_profiles WHERE id = $1 AND account_id = $2 RETURNING id",
                profile_id,
                uuid.UUID(account),
            )
            if deleted is None:
                return False
            await self._enqueue(conn, str(profile_id), None)
            return True

    async def page(self, account: str, query: ListQuery) -> list[ProfileRecord]:
        """One page, newest first; ``query.limit + 1`` rows so the caller sees if more follow."""
        conditions = ["account_id = $1"]
        args: list[Any] = [uuid.UUID(account)]

        def arg(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        if query.title:
            conditions.append(
                f"title ILIKE {arg('%' + escape_like(query.title) + '%')} ESCAPE '\\'"
            )
        if query.method:
            conditions.append(f"method = {arg(query.method)}")
        if query.channel:
            conditions.append(f"channel = {arg(query.channel)}")
        if query.created_from:
            conditions.append(f"created_at >= {arg(query.created_from)}")
        if query.created_to:
            conditions.append(f"created_at <= {arg(query.created_to)}")
        if query.created_before:
            conditions.append(f"created_at < {arg(query.created_before)}")
        if query.after:
            created_at, last_id = query.after
            conditions.append(f"(created_at, id) < ({arg(created_at)}, {arg(last_id)})")
        # Only fixed fragments and $n placeholders are interpolated; values go as arguments.
        sql = (
            "SELECT document FROM callback_profiles WHERE "  # noqa: S608
            + " AND ".join(conditions)
            + f" ORDER BY created_at DESC, id DESC LIMIT {arg(query.limit + 1)}"
        )
        rows = await self._pool.fetch(sql, *args)
        return [self._opened(row["document"]) for row in rows]
