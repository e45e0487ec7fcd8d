"""The operations endpoints every service serves: /healthz, /readyz, /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry

from callbacks.metrics import metrics_handler

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]


def add_ops_routes(
    app: web.Application,
    registry: CollectorRegistry,
    ready: ReadinessCheck,
    *,
    metrics: bool = True,
) -> None:
    """Add /healthz (process alive), /readyz (dependencies reachable) and, unless
    ``metrics`` is false (they are served on a port of their own), /metrics."""

    async def healthz(_request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def readyz(_request: web.Request) -> web.Response:
        checks = await ready()
        ok = all(checks.values())
        return web.json_response(
            {"status": "ready" if ok else "not ready", "checks": checks},
            status=200 if ok else 503,
        )

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if metrics:
        app.router.add_get("/metrics", metrics_handler(registry))


async def start_ops_server(
    registry: CollectorRegistry, ready: ReadinessCheck, host: str, port: int
) -> web.AppRunner:
    """Serve the ops routes on their own port (dispatcher and reporter)."""
    app = web.Application()
    add_ops_routes(app, registry, ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner
