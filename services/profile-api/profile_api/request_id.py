"""A request id on every log line of a request and on its response.

An incoming ``X-Request-Id`` (from a gateway or a client) is honoured so one id follows
a call across systems; otherwise a fresh one is made.
"""

from __future__ import annotations

import re
import uuid

import structlog
from aiohttp import web

from profile_api.problems import Handler

HEADER = "X-Request-Id"
# Bounded and printable: the id lands in logs and headers unescaped.
_ACCEPTABLE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    given = request.headers.get(HEADER, "")
    rid = given if _ACCEPTABLE.match(given) else uuid.uuid4().hex
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=rid)
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers[HEADER] = rid
        raise
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    response.headers[HEADER] = rid
    return response
