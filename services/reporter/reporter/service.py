"""``Reporter(settings)``: the wiring of the reporter process, and nothing else.

Resources open in order (pool, producer for dead letters, ops server) and close in
reverse through an ``AsyncExitStack``. The ingest loop and the report schedule run in
one ``TaskGroup``: if either fails unexpectedly the other is cancelled and the process
exits, so the orchestrator restarts it instead of running half a reporter.
"""

from __future__ import annotations

import asyncio
import contextlib

from callbacks.db import create_pool
from callbacks.health import database_and_broker, start_ops_server
from callbacks.kafka import make_producer, start_client
from callbacks.logging import get_logger
from callbacks.settings import Settings
from prometheus_client import CollectorRegistry

from reporter.auto_disable import ProfileHealth
from reporter.ingest import Ingestor
from reporter.metrics import ReporterMetrics
from reporter.notices import Notifier
from reporter.schedule import Scheduler

log = get_logger(__name__)


class Reporter:
    def __init__(self, settings: Settings, registry: CollectorRegistry | None = None) -> None:
        self.settings = settings
        self.registry = registry or CollectorRegistry()
        self.metrics = ReporterMetrics(self.registry)
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        """Signal handler: finish the current batch or send, then stop."""
        self._stop.set()

    async def run(self) -> None:
        settings = self.settings
        async with contextlib.AsyncExitStack() as stack:
            pool = await create_pool(settings.require_database_url(), max_size=5)
            stack.push_async_callback(pool.close)
            producer = make_producer(settings)
            await start_client(producer)
            stack.push_async_callback(producer.stop)
            runner = await start_ops_server(
                self.registry,
                database_and_broker(lambda: pool, lambda: producer),
                settings.api_host,
                settings.reporter_metrics_port,
            )
            stack.push_async_callback(runner.cleanup)
            notifier = Notifier(settings, pool, self.metrics)
            health = ProfileHealth(
                pool=pool,
                profiles_topic=settings.topics.profiles,
                disable_after_s=settings.auto_disable_after,
                metrics=self.metrics,
                on_notice=notifier.wake,
            )
            ingestor = Ingestor(settings, pool, producer, self.metrics, health=health)
            scheduler = Scheduler(settings, pool, self.metrics, replica=notifier.replica)
            log.info("reporter_started", replica=scheduler.replica)
            async with asyncio.TaskGroup() as group:
                ingest = group.create_task(ingestor.run(), name="reporter-ingest")
                schedule = group.create_task(scheduler.run(), name="reporter-schedule")
                notify = group.create_task(notifier.run(), name="reporter-notices")
                await self._stop.wait()
                ingest.cancel()
                schedule.cancel()
                notify.cancel()
            log.info("reporter_stopped")
