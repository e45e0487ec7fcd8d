"""The delivery log (contract §7): list callbacks, show one with every attempt, retry it.

Reads the reporter's tables (``deliveries``, ``delivery_attempts``); every query is
scoped by the caller's account, so another account's delivery is a 404. A retry is a
``RedeliverRequest`` on ``callbacks.redeliver`` keyed by the delivery id: the dispatcher
re-reads the original event at its source position and delivers it again, so no event
body is ever stored here.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import asyncpg
from aiohttp import web
from callbacks.models.outcomes import OutcomeStatus, RedeliverRequest
from pydantic import BaseModel

from profile_api.auth import account_id
from profile_api.keys import POOL, PRODUCER, SETTINGS
from profile_api.listing import (
    PAGE_PARAMETERS,
    QueryErrors,
    cursor,
    encode_cursor,
    moment,
    one_of,
    page_limit,
    utc_window,
    uuid_param,
)
from profile_api.openapi import json_body, path_id, problems, query_param, ref
from profile_api.problems import Problem

NOT_FOUND = "no delivery with this id"
STATUSES: tuple[str, ...] = get_args(OutcomeStatus)


class Attempt(BaseModel):
    attempt_id: str
    attempt: int
    status: OutcomeStatus
    final: bool
    http_status: int | None
    error: str | None
    latency_ms: float | None
    attempted_at: datetime


class Delivery(BaseModel):
    """One callback with its latest attempt."""

    delivery_id: str
    event_id: str
    event: str
    channel: str
    profile_id: str
    attempt: int
    status: OutcomeStatus
    final: bool
    http_status: int | None
    error: str | None
    latency_ms: float | None
    first_attempted_at: datetime
    last_attempted_at: datetime
    retryable: bool


class DeliveryDetail(Delivery):
    attempts: list[Attempt]


class DeliveryPage(BaseModel):
    items: list[Delivery]
    next_cursor: str | None


class RetryAccepted(BaseModel):
    delivery_id: str
    attempt: int
    status: Literal["queued"] = "queued"


@dataclass(frozen=True)
class DeliveryQuery:
    limit: int
    profile_id: uuid.UUID | None
    status: str | None
    start: datetime | None  # inclusive
    end: datetime | None  # inclusive
    before: datetime | None  # exclusive (a date-only `to` means the whole day)
    after: tuple[datetime, str] | None


def parse_query(params: Mapping[str, str]) -> DeliveryQuery:
    """Validate the listing parameters; one 422 naming every bad one."""
    errors = QueryErrors()
    limit = page_limit(params.get("limit"), errors)
    profile = uuid_param(params, "profile_id", errors)
    status = one_of(params, "status", STATUSES, errors)
    window = utc_window(moment(params, "from", errors), moment(params, "to", errors))
    after = cursor(params, errors, str)
    errors.raise_any()
    return DeliveryQuery(limit, profile, status, window.start, window.end, window.before, after)


_COLUMNS = """delivery_id, event_id, event, channel, profile_id, attempt, status, final,
              http_status, error, latency_ms, first_attempted_at, last_attempted_at,
              source_topic, source_partition, source_offset"""


def _delivery(row: asyncpg.Record) -> dict[str, Any]:
    item = Delivery(
        delivery_id=row["delivery_id"],
        event_id=row["event_id"],
        event=row["event"],
        channel=row["channel"],
        profile_id=str(row["profile_id"]),
        attempt=row["attempt"],
        status=row["status"],
        final=row["final"],
        http_status=row["http_status"],
        error=row["error"],
        latency_ms=row["latency_ms"],
        first_attempted_at=row["first_attempted_at"],
        last_attempted_at=row["last_attempted_at"],
        retryable=row["source_topic"] is not None,
    )
    return item.model_dump(mode="json")


async def list_deliveries(request: web.Request) -> web.Response:
    query = parse_query(request.query)
    conditions = ["account_id = $1"]
    args: list[Any] = [uuid.UUID(account_id(request))]

    def where(sql: str, value: Any) -> None:
        args.append(value)
        conditions.append(sql.format(f"${len(args)}"))

    if query.profile_id is not None:
        where("profile_id = {}", query.profile_id)
    if query.status is not None:
        where("status = {}", query.status)
    if query.start is not None:
        where("last_attempted_at >= {}", query.start)
    if query.end is not None:
        where("last_attempted_at <= {}", query.end)
    if query.before is not None:
        where("last_attempted_at < {}", query.before)
    if query.after is not None:
        args.extend(query.after)
        conditions.append(f"(last_attempted_at, delivery_id) < (${len(args) - 1}, ${len(args)})")
    args.append(query.limit + 1)
    sql = (
        f"SELECT {_COLUMNS} FROM deliveries WHERE {' AND '.join(conditions)}"  # noqa: S608 - only placeholders are interpolated
        f" ORDER BY last_attempted_at DESC, delivery_id DESC LIMIT ${len(args)}"
    )
    rows = await request.app[POOL].fetch(sql, *args)
    items, more = rows[: query.limit], len(rows) > query.limit
    last = items[-1] if items else None
    cursor = (
        encode_cursor(last["last_attempted_at"], last["delivery_id"]) if more and last else None
    )
    return web.json_response({"items": [_delivery(r) for r in items], "next_cursor": cursor})


async def _find(request: web.Request) -> asyncpg.Record:
    row: asyncpg.Record | None = await request.app[POOL].fetchrow(
        f"SELECT {_COLUMNS} FROM deliveries WHERE account_id = $1 AND delivery_id = $2",  # noqa: S608 - constant column list
        uuid.UUID(account_id(request)),
        request.match_info["delivery_id"],
    )
    if row is None:
        raise Problem(404, NOT_FOUND)
    return row


async def get_delivery(request: web.Request) -> web.Response:
    row = await _find(request)
    attempts = await request.app[POOL].fetch(
        """SELECT attempt_id, attempt, status, final, http_status, error, latency_ms,
                  attempted_at
           FROM delivery_attempts WHERE delivery_id = $1 AND account_id = $2
           ORDER BY attempt, attempted_at""",
        row["delivery_id"],
        uuid.UUID(account_id(request)),
    )
    body = _delivery(row)
    body["attempts"] = [Attempt(**dict(a)).model_dump(mode="json") for a in attempts]
    return web.json_response(body)


async def retry_delivery(request: web.Request) -> web.Response:
    row = await _find(request)
    if row["source_topic"] is None:
        raise Problem(
            409,
            "this delivery cannot be retried: the position of its event is unknown",
            kind="not-retryable",
        )
    redeliver = RedeliverRequest(
        delivery_id=row["delivery_id"],
        event_id=row["event_id"],
        account_id=account_id(request),
        profile_id=str(row["profile_id"]),
        source_topic=row["source_topic"],
        source_partition=row["source_partition"],
        source_offset=row["source_offset"],
        attempt=row["attempt"] + 1,
        requested_at=datetime.now(UTC),
    )
    await request.app[PRODUCER].send_and_wait(
        request.app[SETTINGS].topics.redeliver,
        key=redeliver.delivery_id.encode(),
        value=redeliver.model_dump_json().encode(),
    )
    accepted = RetryAccepted(delivery_id=redeliver.delivery_id, attempt=redeliver.attempt)
    return web.json_response(accepted.model_dump(), status=202)


def register(app: web.Application) -> None:
    app.router.add_get("/v1/deliveries", list_deliveries)
    app.router.add_get("/v1/deliveries/{delivery_id}", get_delivery)
    app.router.add_post("/v1/deliveries/{delivery_id}/retry", retry_delivery)


_DELIVERY_ID = {
    **path_id("delivery_id", "Delivery id (the webhook-id header)"),
    "schema": {"type": "string"},
}

OPENAPI_MODELS: tuple[type[BaseModel], ...] = (
    Delivery,
    DeliveryDetail,
    DeliveryPage,
    RetryAccepted,
)
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/deliveries": {
        "get": {
            "summary": "List callbacks with their latest attempt, newest first",
            "parameters": [
                query_param(
                    "profile_id", "Callback profile id", {"type": "string", "format": "uuid"}
                ),
                query_param("status", "Status of the latest attempt", {"enum": list(STATUSES)}),
                query_param(
                    "from",
                    "ISO 8601 date or date-time, inclusive (last attempt)",
                    {"type": "string"},
                ),
                query_param(
                    "to",
                    "ISO 8601 date or date-time, inclusive (a date is the whole day)",
                    {"type": "string"},
                ),
                *PAGE_PARAMETERS,
            ],
            "responses": {"200": json_body(ref(DeliveryPage), "One page"), **problems(422)},
        }
    },
    "/v1/deliveries/{delivery_id}": {
        "parameters": [_DELIVERY_ID],
        "get": {
            "summary": "One callback with every attempt",
            "responses": {"200": json_body(ref(DeliveryDetail), "The delivery"), **problems(404)},
        },
    },
    "/v1/deliveries/{delivery_id}/retry": {
        "parameters": [_DELIVERY_ID],
        "post": {
            "summary": "Deliver this callback again now (through the dispatcher)",
            "responses": {
                "202": json_body(ref(RetryAccepted), "Queued for redelivery"),
                **problems(404, 409),
            },
        },
    },
}
