"""Helpers of the metric tests: the running local stack with its sink, and scraping its
services' ``/metrics`` pages."""

from __future__ import annotations

from dataclasses import dataclass, field

import aiohttp
from callbacks_dev.devstack.stack import SERVICES, LocalStack

from tests.deploy.promql import Exposition


@dataclass
class Sink:
    """A customer endpoint on loopback that records what it receives."""

    url: str
    received: list[bytes] = field(default_factory=list)


@dataclass
class RunningStack:
    stack: LocalStack
    started: list[str]
    sink: Sink

    @property
    def missing(self) -> list[str]:
        return [s for s in SERVICES if s not in self.started]

    def metrics_url(self, module: str) -> str:
        return self.stack.ready_url(module).replace("/readyz", "/metrics")

    async def scrape(self, module: str) -> Exposition:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.metrics_url(module)) as response,
        ):
            assert response.status == 200, module
            return Exposition.parse(await response.text())

    async def scrape_all(self) -> Exposition:
        page = Exposition()
        for module in self.started:
            page.merge(await self.scrape(module))
        return page
