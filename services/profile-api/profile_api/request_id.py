"""A request id on every log line of a request and on its response, and one canonical
``http_request`` log line per request (method, route template, status, duration).

An incoming ``X-Request-Id`` (from a gateway or a client) is honoured so one id follows
a call across systems; otherwise a fresh one is made.
"""

from __future__ import annotations

import re
import time
import uuid

import structlog
from aiohttp import web
from callbacks.logging import get_logger

from profile_api.problems import Handler

log = get_logger("profile_api.http")

HEADER = "X-Request-Id"
# Bounded and printable: the id lands in logs and headers unescaped.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get(HEADER, "")
    rid = given if _ACCEPTABLE.match(given) else uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except web.HTTPException as exc:
        status = exc.status
        exc.headers[HEADER] = rid
        raise
    finally:
        resource = request.match_info.route.resource
        log.info(
            "http_request",
            method=request.method,
            route=resource.canonical if resource is not None else "unmatched",
            status=status,
            duration_ms=round((time.perf_counter() - started) * 1000, 2),
        )
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers[HEADER] = rid
    return response
