"""``create_app(settings)``: all the wiring of profile-api, and nothing else.

Resources live in one cleanup context: the pool, the producer and the outbox relay
task are opened in that order and closed in reverse through an ``AsyncExitStack``, so
one failing close does not skip the others. The relay is a task this context starts
and cancels itself (aiohttp's graceful shutdown waits only for request handlers).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from importlib.metadata import PackageNotFoundError, version
from typing import cast

from aiohttp import web
from aiohttp.typedefs import Middleware
from aiokafka.errors import KafkaError
from callbacks.db import create_pool
from callbacks.health import add_ops_routes, database_and_broker, start_ops_server
from callbacks.kafka import make_producer
from callbacks.metrics import HttpMetrics
from callbacks.secretbox import SecretBox
from callbacks.settings import Settings
from prometheus_client import CollectorRegistry

from profile_api.auth import auth_middleware
from profile_api.keys import POOL, PRODUCER, PROFILE_STORE, REGISTRY, SECRET_BOX, SETTINGS
from profile_api.openapi import build_document
from profile_api.outbox import OutboxMetrics, OutboxRelay
from profile_api.problems import error_middleware
from profile_api.rate_limits import install as install_rate_limits
from profile_api.request_id import request_id_middleware
from profile_api.routes import MODULES
from profile_api.store import ProfileStore

# A publish waits at most this long for the broker before the relay backs off and
# retries; short enough that /readyz and the relay notice an outage quickly.
PRODUCER_REQUEST_TIMEOUT_MS = 10_000
MAX_BODY_BYTES = 1024 * 1024


def _version() -> str:
    try:
        return version("callback-profiles")
    except PackageNotFoundError:
        return "0.0.0"


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> web.Application:
    registry = registry or CollectorRegistry()
    http_metrics = HttpMetrics(registry)
    app = web.Application(
        middlewares=[
            request_id_middleware,
            # The shared helper is typed as a plain callable; it is an aiohttp middleware.
            cast(Middleware, http_metrics.middleware()),
            error_middleware,
            auth_middleware,
        ],
        client_max_size=MAX_BODY_BYTES,
    )
    app[SETTINGS] = settings
    app[REGISTRY] = registry
    install_rate_limits(app)
    box = SecretBox(settings.master_keys_bytes())
    app[SECRET_BOX] = box
    outbox_metrics = OutboxMetrics(registry)

    async def resources(app: web.Application) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            pool = await create_pool(settings.require_database_url())
            stack.push_async_callback(pool.close)
            app[POOL] = pool
            app[PROFILE_STORE] = ProfileStore(pool, box, settings.topics.profiles)
            producer = make_producer(settings, request_timeout_ms=PRODUCER_REQUEST_TIMEOUT_MS)
            await producer.start()
            stack.push_async_callback(producer.stop)
            app[PRODUCER] = producer
            # The first change after start must not wait for the topic's metadata (a first
            # look-up can take seconds on a cluster): fetch it now, without blocking a
            # start while the broker is away (the relay retries then anyway).
            with contextlib.suppress(KafkaError, TimeoutError):
                await asyncio.wait_for(producer.partitions_for(settings.topics.profiles), 5.0)
            relay = OutboxRelay(
                dsn=settings.require_database_url(),
                producer=producer,
                topic=settings.topics.profiles,
                poll_interval_s=settings.outbox_poll_interval,
                metrics=outbox_metrics,
            )
            task = asyncio.create_task(relay.run(), name="outbox-relay")
            stack.push_async_callback(_stop_task, task)
            yield

    app.cleanup_ctx.append(resources)

    ready = database_and_broker(lambda: app[POOL], lambda: app[PRODUCER])
    for module in MODULES:
        module.register(app)
    document = build_document(MODULES, _version())

    async def openapi(_request: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get("/openapi.json", openapi)
    metrics_port = settings.api_metrics_port
    add_ops_routes(app, registry, ready, metrics=metrics_port is None)
    if metrics_port is not None:

        async def ops_server(_app: web.Application) -> AsyncIterator[None]:
            runner = await start_ops_server(registry, ready, settings.api_host, metrics_port)
            yield
            await runner.cleanup()

        app.cleanup_ctx.append(ops_server)
    return app


async def _stop_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
