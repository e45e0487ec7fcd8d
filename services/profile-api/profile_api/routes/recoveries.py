"""Bulk recovery (contract §7): start one, watch its progress.

``POST /v1/callback-profiles/{id}/recover`` counts the profile's callbacks of the window
and records a ``running`` recovery in one transaction; a replica's
:class:`profile_api.recovery.RecoveryRunner` (started here, in this module's cleanup
context) publishes their redeliver requests. ``GET /v1/recoveries/{id}`` reads the row.
Both are scoped by the caller's account: another account's profile or recovery is a
404.

The window is ``[since, until)`` on a callback's first attempt; ``until`` defaults to
the request time and never reaches past it. ``since`` may not be older than the source
topics' retention (``CALLBACKS_KAFKA_SOURCE_RETENTION``): an older event is gone from
its topic, so its callback could not be delivered again.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
from aiohttp import web
from pydantic import BaseModel, ConfigDict, ValidationError

from profile_api.auth import account_id
from profile_api.keys import POOL, PRODUCER, REGISTRY, SETTINGS
from profile_api.openapi import json_body, path_id, problems, ref
from profile_api.problems import (
    FieldProblem,
    Problem,
    pydantic_errors,
    read_json_object,
    validation_problem,
)
from profile_api.recovery import RecoveryRunner

RUNNER = web.AppKey("recovery_runner", RecoveryRunner)
NO_PROFILE = "no callback profile with this id"
NO_RECOVERY = "no recovery with this id"

_COUNT = """
SELECT count(*) FROM deliveries
 WHERE profile_id = $1 AND account_id = $2
   AND first_attempted_at >= $3 AND first_attempted_at < $4
   AND source_topic IS NOT NULL
   AND ($5 = 'all' OR status = 'failed')
"""
_COLUMNS = "id, profile_id, since, until, filter, status, total, done, created_at, finished_at"


class RecoverRequest(BaseModel):
    """Which callbacks of the profile to deliver again (a naive time is UTC)."""

    model_config = ConfigDict(extra="forbid")

    since: datetime
    until: datetime | None = None
    status: Literal["failed", "all"] = "failed"


class RecoveryStarted(BaseModel):
    id: str
    status: Literal["running", "done"]
    total: int
    done: int


class Recovery(RecoveryStarted):
    """A recovery's progress: ``done`` of ``total`` callbacks handed to the dispatcher."""

    profile_id: str
    since: datetime
    until: datetime | None
    filter: Literal["failed", "all"]
    created_at: datetime
    finished_at: datetime | None


def _utc(value: datetime) -> datetime:
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC)


def parse_request(body: dict[str, Any], *, now: datetime, retention_s: float) -> RecoverRequest:
    """The body, times in UTC; one 422 naming every bad field."""
    try:
        request = RecoverRequest.model_validate(body)
    except ValidationError as exc:
        raise validation_problem(pydantic_errors(exc)) from exc
    errors: list[FieldProblem] = []
    try:
        since = _utc(request.since)
        until = None if request.until is None else _utc(request.until)
    except (OverflowError, ValueError) as exc:
        raise validation_problem(
            [FieldProblem(field="since", message=f"not a representable time: {exc}")]
        ) from exc
    oldest = now - timedelta(seconds=retention_s)
    if since < oldest:
        errors.append(
            FieldProblem(
                field="since",
                message=f"older than the delivery log can redeliver (events are kept "
                f"{retention_s / 86400:g} days); use {oldest.isoformat()} or later",
            )
        )
    if until is not None and until <= since:
        errors.append(FieldProblem(field="until", message="must be later than since"))
    if errors:
        raise validation_problem(errors)
    return request.model_copy(update={"since": since, "until": until})


def _profile_uuid(request: web.Request) -> uuid.UUID:
    try:
        return uuid.UUID(request.match_info["id"])
    except ValueError as exc:
        raise Problem(404, NO_PROFILE) from exc


def _recovery(row: asyncpg.Record) -> dict[str, Any]:
    return Recovery(
        id=str(row["id"]),
        status=row["status"],
        total=row["total"],
        done=row["done"],
        profile_id=str(row["profile_id"]),
        since=row["since"],
        until=row["until"],
        filter=row["filter"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    ).model_dump(mode="json")


async def start_recovery(request: web.Request) -> web.Response:
    profile_id = _profile_uuid(request)
    account = uuid.UUID(account_id(request))
    settings = request.app[SETTINGS]
    now = datetime.now(UTC)
    body = parse_request(
        await read_json_object(request),
        now=now,
        retention_s=settings.kafka_source_retention,
    )
    window_end = now if body.until is None else min(body.until, now)
    pool: asyncpg.Pool = request.app[POOL]
    recovery_id = uuid.uuid4()
    async with pool.acquire() as conn, conn.transaction():
        owned = await conn.fetchval(
            "SELECT 1 FROM callback_profiles WHERE id = $1 AND account_id = $2",
            profile_id,
            account,
        )
        if owned is None:
            raise Problem(404, NO_PROFILE)
        total = await conn.fetchval(
            _COUNT, profile_id, account, body.since, window_end, body.status
        )
        try:
            await conn.execute(
                """INSERT INTO recoveries (id, account_id, profile_id, since, until,
                                           window_end, filter, status, total)
                   VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8)""",
                recovery_id,
                account,
                profile_id,
                body.since,
                body.until,
                window_end,
                body.status,
                total,
            )
        except asyncpg.UniqueViolationError as exc:
            raise Problem(
                409,
                "a recovery of this profile and window is running; "
                "watch it with GET /v1/recoveries/{id} or wait until it is done",
                kind="recovery-running",
            ) from exc
    request.app[RUNNER].wake()
    started = RecoveryStarted(id=str(recovery_id), status="running", total=total, done=0)
    return web.json_response(started.model_dump(), status=202)


async def get_recovery(request: web.Request) -> web.Response:
    try:
        recovery_id = uuid.UUID(request.match_info["id"])
    except ValueError as exc:
        raise Problem(404, NO_RECOVERY) from exc
    row = await request.app[POOL].fetchrow(
        f"SELECT {_COLUMNS} FROM recoveries WHERE id = $1 AND account_id = $2",  # noqa: S608 - constant column list
        recovery_id,
        uuid.UUID(account_id(request)),
    )
    if row is None:
        raise Problem(404, NO_RECOVERY)
    return web.json_response(_recovery(row))


async def _runner(app: web.Application) -> AsyncIterator[None]:
    """This replica's recovery worker, after the pool and producer exist; on shutdown it
    is cancelled (it finishes the callback in hand and releases its claim)."""
    runner = RecoveryRunner(
        pool=app[POOL], producer=app[PRODUCER], settings=app[SETTINGS], registry=app[REGISTRY]
    )
    app[RUNNER] = runner
    task = asyncio.create_task(runner.run(), name="recovery-runner")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def register(app: web.Application) -> None:
    app.router.add_post("/v1/callback-profiles/{id}/recover", start_recovery)
    app.router.add_get("/v1/recoveries/{id}", get_recovery)
    app.cleanup_ctx.append(_runner)


OPENAPI_MODELS: tuple[type[BaseModel], ...] = (RecoverRequest, RecoveryStarted, Recovery)
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/callback-profiles/{id}/recover": {
        "parameters": [path_id()],
        "post": {
            "summary": "Deliver the profile's callbacks of a window again (failed only, or all)",
            "description": "The window is [since, until) on each callback's first attempt; "
            "until defaults to now. Paced at CALLBACKS_RECOVERY_RATE per replica.",
            "requestBody": {"required": True, **json_body(ref(RecoverRequest))},
            "responses": {
                "202": json_body(ref(RecoveryStarted), "Recovery started"),
                **problems(400, 404, 409, 422),
            },
        },
    },
    "/v1/recoveries/{id}": {
        "parameters": [path_id("id", "Recovery id")],
        "get": {
            "summary": "A recovery's progress",
            "responses": {"200": json_body(ref(Recovery), "The recovery"), **problems(404)},
        },
    },
}
