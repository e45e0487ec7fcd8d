"""Prometheus metrics shared by the services; names are constants (contract §8).

Every metric object is built against a registry passed in, so tests use a fresh
``CollectorRegistry`` and never collide with each other.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

HTTP_REQUESTS_TOTAL = "callbacks_http_requests_total"
HTTP_REQUEST_DURATION = "callbacks_http_request_duration_seconds"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HttpMetrics:
    """Request count and duration per route template (never the raw path)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            HTTP_REQUESTS_TOTAL,
            "HTTP requests served, by route template and status code.",
            ["route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            HTTP_REQUEST_DURATION,
            "HTTP request duration in seconds, by route template.",
            ["route"],
            registry=registry,
        )

    def middleware(self) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
        @web.middleware
        async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
            started = time.perf_counter()
            status = 500
            try:
                response = await handler(request)
                status = response.status
                return response
            except web.HTTPException as exc:
                status = exc.status
                raise
            finally:
                route = _route_template(request)
                self.requests.labels(route=route, status=str(status)).inc()
                self.duration.labels(route=route).observe(time.perf_counter() - started)

        return observe


def _route_template(request: web.Request) -> str:
    info = request.match_info.route.resource
    if info is None:
        return "unmatched"
    return info.canonical


def metrics_handler(registry: CollectorRegistry) -> Handler:
    async def handle(_request: web.Request) -> web.Response:
        body = generate_latest(registry)
        response = web.Response(body=body)
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        response.charset = "utf-8"
        return response

    return handle
