"""Problem details (RFC 9457): the one shape of every 4xx and 5xx this API answers.

Handlers raise :class:`Problem`; :func:`error_middleware` is the one place that turns
exceptions (ours, aiohttp's routing errors, anything unexpected) into
``application/problem+json`` responses, so no handler formats an error by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from aiohttp import web
from callbacks.logging import get_logger
from pydantic import BaseModel, ValidationError

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:callbacks:problem:"
VALIDATION = "validation-error"
MALFORMED = "malformed-request"
# No request body of this API nests deeper than a handful of levels; a deeper one is
# refused before anything walks it (a recursive walk would hit Python's stack limit).
MAX_JSON_DEPTH = 32

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FieldProblem(BaseModel):
    """One rejected field: a dotted path into the request (``headers.X-Id``) and why."""

    field: str
    message: str


class ProblemBody(BaseModel):
    """The body of every error response (documented in the OpenAPI components)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldProblem] | None = None


class Problem(Exception):
    """An error answer; raised by handlers, rendered by :func:`error_middleware`."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        kind: str | None = None,
        errors: Sequence[FieldProblem] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.kind = kind
        self.errors = list(errors)
        self.headers = headers or {}


def problem_response(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    errors: Sequence[FieldProblem] = (),
    headers: dict[str, str] | None = None,
) -> web.Response:
    """A ``application/problem+json`` response; ``kind`` names the problem type."""
    body: dict[str, Any] = {
        "type": f"{TYPE_BASE}{kind}" if kind else "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [e.model_dump() for e in errors]
    response = web.Response(body=orjson.dumps(body), status=status, headers=headers)
    response.content_type = PROBLEM_JSON
    return response


def validation_problem(errors: Iterable[FieldProblem]) -> Problem:
    """A 422 naming every rejected field."""
    listed = list(errors)
    fields = ", ".join(dict.fromkeys(e.field for e in listed))
    return Problem(422, f"invalid fields: {fields}", kind=VALIDATION, errors=listed)


def pydantic_errors(exc: ValidationError, prefix: str = "") -> list[FieldProblem]:
    """Pydantic's errors as field problems; an unknown field is named as such."""
    out: list[FieldProblem] = []
    for error in exc.errors(include_url=False):
        path = ".".join(str(part) for part in error["loc"])
        field = f"{prefix}{path}" if path else prefix.rstrip(".") or "body"
        message = "unknown field" if error["type"] == "extra_forbidden" else error["msg"]
        out.append(FieldProblem(field=field, message=message))
    return out


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object; 400 when it is not JSON or nests deeper than
    ``MAX_JSON_DEPTH``, 422 when not an object."""
    raw = await request.read()
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError as exc:
        raise Problem(400, f"request body is not valid JSON: {exc}", kind=MALFORMED) from exc
    if _depth_exceeds(value, MAX_JSON_DEPTH):
        raise Problem(
            400, f"request body nests deeper than {MAX_JSON_DEPTH} levels", kind=MALFORMED
        )
    if not isinstance(value, dict):
        raise validation_problem(
            [FieldProblem(field="body", message="the request body must be a JSON object")]
        )
    nul = list(_nul_paths(value, ""))
    if nul:
        raise validation_problem(
            [FieldProblem(field=path, message="NUL characters are not allowed") for path in nul]
        )
    return value


def _depth_exceeds(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than ``limit``; iterative, so any depth
    orjson accepted is walked without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Iterable[Any] = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _nul_paths(value: Any, path: str) -> Iterable[str]:
    """Paths of strings holding NUL, which PostgreSQL text and jsonb cannot store."""
    if isinstance(value, str):
        if "\x00" in value:
            yield path or "body"
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key}" if path else str(key)
            if "\x00" in key:
                yield child.replace("\x00", "\\0")
            else:
                yield from _nul_paths(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _nul_paths(item, f"{path}.{index}" if path else str(index))


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every exception to a problem response: the only error formatter of the API."""
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except Problem as exc:
        return problem_response(
            exc.status, exc.detail, kind=exc.kind, errors=exc.errors, headers=exc.headers
        )
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        headers = {k: v for k, v in exc.headers.items() if k.lower() in {"allow", "retry-after"}}
        return problem_response(exc.status, exc.reason, headers=headers)
    except Exception:
        # The request count with status 500 is the metric (HttpMetrics wraps this).
        log.exception("request_failed", method=request.method, path=request.path)
        return problem_response(500, "internal error; see the server log for this request id")
