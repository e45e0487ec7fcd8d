"""Report settings and send-now (contract §7), and what the web page needs beside them:
the time zones a setting may name, and how a send-now request is getting on.

The API never talks SMTP: ``send-now`` records a request (a ``report_runs`` row of kind
``now``) and wakes the reporter with ``NOTIFY`` in the same transaction; the reporter
claims it like any scheduled report, so it is sent once even with several replicas.
"""

from __future__ import annotations

import functools
import re
import uuid
import zoneinfo
from datetime import datetime
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from profile_api.auth import account_id
from profile_api.keys import POOL
from profile_api.openapi import json_body, problems, ref
from profile_api.problems import (
    FieldProblem,
    Problem,
    pydantic_errors,
    read_json_object,
    validation_problem,
)
from profile_api.rate_limits import limit_send_now

# The reporter LISTENs on this channel (reporter.schedule.REPORT_REQUESTS_CHANNEL); the
# services do not import each other, so the name is written in both places.
REPORT_REQUESTS_CHANNEL = "callbacks_report_requests"
MAX_RECIPIENTS = 50
# Pragmatic address check: one @, no spaces or angle brackets, a dotted or plain host.
_EMAIL = re.compile(r"^[^@\s<>,;\"]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@functools.cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


class ReportSettings(BaseModel):
    """What the scheduled report of an account looks like; PUT replaces it whole."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool
    frequency: Literal["daily", "weekly", "monthly"]
    recipients: list[str] = Field(max_length=MAX_RECIPIENTS)
    timezone: str = Field(description="IANA time zone, e.g. Asia/Kolkata")

    @field_validator("recipients")
    @classmethod
    def _check_recipients(cls, value: list[str]) -> list[str]:
        for address in value:
            if not _EMAIL.match(address) or ".." in address:
                raise ValueError(f"not an email address: {address!r}")
        return list(dict.fromkeys(value))

    @field_validator("timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError(f"unknown IANA time zone {value!r} (e.g. Asia/Kolkata, UTC)")
        return value


DEFAULTS = ReportSettings(enabled=False, frequency="daily", recipients=[], timezone="UTC")


class SendNowAccepted(BaseModel):
    request_id: int
    status: Literal["queued"] = "queued"


class SendNowStatus(BaseModel):
    """``queued`` until the reporter has sent it; ``retrying`` after a failed attempt
    (the relay's own error stays in the reporter's log)."""

    request_id: int
    status: Literal["queued", "retrying", "sent"]
    requested_at: datetime
    sent_at: datetime | None


class TimeZones(BaseModel):
    timezones: list[str]


async def get_settings(request: web.Request) -> web.Response:
    row = await request.app[POOL].fetchrow(
        "SELECT enabled, frequency, recipients, timezone FROM report_settings"
        " WHERE account_id = $1",
        uuid.UUID(account_id(request)),
    )
    current = DEFAULTS if row is None else ReportSettings(**dict(row))
    return web.json_response(current.model_dump())


async def put_settings(request: web.Request) -> web.Response:
    try:
        wanted = ReportSettings.model_validate(await read_json_object(request))
    except ValidationError as exc:
        raise validation_problem(pydantic_errors(exc)) from exc
    if wanted.enabled and not wanted.recipients:
        raise validation_problem(
            [FieldProblem(field="recipients", message="an enabled report needs a recipient")]
        )
    await request.app[POOL].execute(
        """INSERT INTO report_settings (account_id, enabled, frequency, recipients, timezone)
           VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (account_id) DO UPDATE SET
               enabled = EXCLUDED.enabled, frequency = EXCLUDED.frequency,
               recipients = EXCLUDED.recipients, timezone = EXCLUDED.timezone,
               updated_at = now()""",
        uuid.UUID(account_id(request)),
        wanted.enabled,
        wanted.frequency,
        wanted.recipients,
        wanted.timezone,
    )
    return web.json_response(wanted.model_dump())


async def send_now(request: web.Request) -> web.Response:
    account = uuid.UUID(account_id(request))
    limit_send_now(request, str(account))
    async with request.app[POOL].acquire() as conn, conn.transaction():
        recipients = await conn.fetchval(
            "SELECT recipients FROM report_settings WHERE account_id = $1", account
        )
        if not recipients:
            raise Problem(
                409,
                "no report recipients: PUT /v1/callback-reports/settings first",
                kind="reports-not-configured",
            )
        request_id: int = await conn.fetchval(
            "INSERT INTO report_runs (account_id, kind) VALUES ($1, 'now') RETURNING id", account
        )
        await conn.execute("SELECT pg_notify($1, $2)", REPORT_REQUESTS_CHANNEL, str(request_id))
    return web.json_response(SendNowAccepted(request_id=request_id).model_dump(), status=202)


async def send_now_status(request: web.Request) -> web.Response:
    raw = request.match_info["request_id"]
    row = None
    if raw.isascii() and raw.isdigit() and len(raw) <= 18:
        row = await request.app[POOL].fetchrow(
            """SELECT id, requested_at, sent_at, last_error FROM report_runs
               WHERE id = $1 AND account_id = $2 AND kind = 'now'""",
            int(raw),
            uuid.UUID(account_id(request)),
        )
    if row is None:
        raise Problem(404, "no send-now request with this id")
    status: Literal["queued", "retrying", "sent"] = (
        "sent" if row["sent_at"] else "retrying" if row["last_error"] else "queued"
    )
    body = SendNowStatus(
        request_id=row["id"],
        status=status,
        requested_at=row["requested_at"],
        sent_at=row["sent_at"],
    )
    return web.json_response(body.model_dump(mode="json"))


async def timezones(_request: web.Request) -> web.Response:
    return web.json_response(TimeZones(timezones=sorted(_zones())).model_dump())


def register(app: web.Application) -> None:
    app.router.add_get("/v1/callback-reports/settings", get_settings)
    app.router.add_put("/v1/callback-reports/settings", put_settings)
    app.router.add_post("/v1/callback-reports/send-now", send_now)
    app.router.add_get("/v1/callback-reports/send-now/{request_id}", send_now_status)
    app.router.add_get("/v1/callback-reports/timezones", timezones)


_SETTINGS = json_body(ref(ReportSettings), "The report settings")
OPENAPI_MODELS: tuple[type[BaseModel], ...] = (
    ReportSettings,
    SendNowAccepted,
    SendNowStatus,
    TimeZones,
)
OPENAPI_PATHS: dict[str, Any] = {
    "/v1/callback-reports/settings": {
        "get": {
            "summary": "The account's report settings (defaults, disabled, if never set)",
            "responses": {"200": _SETTINGS, **problems()},
        },
        "put": {
            "summary": "Replace the account's report settings",
            "requestBody": {"required": True, **json_body(ref(ReportSettings))},
            "responses": {"200": _SETTINGS, **problems(400, 422)},
        },
    },
    "/v1/callback-reports/send-now": {
        "post": {
            "summary": "Send the report of the period so far now",
            "responses": {
                "202": json_body(ref(SendNowAccepted), "Queued; the reporter sends it"),
                **problems(409),
            },
        }
    },
    "/v1/callback-reports/send-now/{request_id}": {
        "parameters": [
            {
                "name": "request_id",
                "in": "path",
                "required": True,
                "description": "request_id of the send-now answer",
                "schema": {"type": "integer"},
            }
        ],
        "get": {
            "summary": "Whether a send-now report has been sent",
            "responses": {
                "200": json_body(ref(SendNowStatus), "The request's state"),
                **problems(404),
            },
        },
    },
    "/v1/callback-reports/timezones": {
        "get": {
            "summary": "The IANA time zones a report setting may name",
            "responses": {"200": json_body(ref(TimeZones), "Sorted zone names"), **problems()},
        }
    },
}
