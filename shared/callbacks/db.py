"""PostgreSQL helpers: the pool and the migration runner.

Migrations are plain SQL files in ``callbacks/migrations`` applied in name order and
recorded in ``schema_migrations``. A transaction-scoped advisory lock serialises
concurrent runners, so two processes starting at once apply each file exactly once.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from typing import Any

import asyncpg
import orjson

from callbacks.logging import get_logger

log = get_logger(__name__)

_MIGRATION_LOCK_KEY = 0x43_42_4D_49_47  # "CBMIG": one constant every runner agrees on

# What a call to PostgreSQL raises when it fails: the server's errors, the connection's
# (closed, or in a wrong state) and the network's. A loop that must not stop catches
# these, counts and logs them, and tries again.
DATABASE_ERRORS: tuple[type[Exception], ...] = (
    asyncpg.PostgresError,
    OSError,
    asyncpg.InterfaceError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name,
            encoder=lambda value: orjson.dumps(value).decode(),
            decoder=orjson.loads,
            schema="pg_catalog",
        )


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """A pool whose json/jsonb columns read and write Python values."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection
    )
    return pool


def migration_files() -> list[tuple[str, str]]:
    """(name, sql) of every migration shipped with the package, in order."""
    folder = resources.files("callbacks").joinpath("migrations")
    files = [entry for entry in folder.iterdir() if entry.name.endswith(".sql")]
    return [(entry.name, entry.read_text("utf-8")) for entry in sorted(files, key=lambda e: e.name)]


async def migrate(dsn: str) -> list[str]:
    """Apply pending migrations; return the names applied by this call."""
    applied: list[str] = []
    conn: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK_KEY)
            await conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       name text PRIMARY KEY,
                       checksum text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            done: dict[str, Any] = {
                row["name"]: row["checksum"]
                for row in await conn.fetch("SELECT name, checksum FROM schema_migrations")
            }
            for name, sql in migration_files():
                checksum = hashlib.sha256(sql.encode()).hexdigest()
                if name in done:
                    if done[name] != checksum:
                        log.warning("migration_changed_after_apply", migration=name)
                    continue
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)", name, checksum
                )
                applied.append(name)
                log.info("migration_applied", migration=name)
    finally:
        await conn.close()
    return applied
