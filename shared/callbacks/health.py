"""The operations endpoints every service serves: /healthz, /readyz, /metrics.

``/readyz`` answers 200 only when every check of the service's ``ReadinessCheck`` is
true, and names each check in its body. ``probe`` and ``database_and_broker`` build the
checks: a check is a real round trip (cached state would say yes during an outage),
bounded by ``READY_TIMEOUT_S``, and any failure of it means not ready.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
from aiohttp import web
from aiokafka import AIOKafkaProducer
from prometheus_client import CollectorRegistry

from callbacks.logging import get_logger
from callbacks.metrics import metrics_handler

log = get_logger(__name__)

ReadinessCheck = Callable[[], Awaitable[dict[str, bool]]]

READY_TIMEOUT_S = 2.0


async def probe(call: Callable[[], Awaitable[object]], timeout_s: float = READY_TIMEOUT_S) -> bool:
    """True if ``call()`` finishes within ``timeout_s`` without error.

    Any error means not ready (``readiness_check_failed`` logs it); a cancelled caller
    is cancelled, not "not ready".
    """
    try:
        await asyncio.wait_for(call(), timeout_s)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - /readyz reports it; the log says why
        log.warning("readiness_check_failed", error=repr(exc))
        return False
    return True


def database_and_broker(
    pool: Callable[[], asyncpg.Pool], producer: Callable[[], AIOKafkaProducer]
) -> ReadinessCheck:
    """Ready when PostgreSQL answers a query and the broker answers a metadata request.

    ``pool`` and ``producer`` are read at each check, so the check can be made before
    the resources it probes are opened.
    """

    async def ready() -> dict[str, bool]:
        # The resources are read inside each probe: not opened yet is not ready.
        return {
            "database": await probe(lambda: pool().fetchval("SELECT 1")),
            "broker": await probe(lambda: producer().client.fetch_all_metadata()),  # noqa: PLW0108
        }

    return ready


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
