"""``callbacks_endpoint_concurrency_limit{host}``, read from the guard at scrape time.

Hosts are customers' and unbounded, so only the busiest ``top`` get their own label
value; the rest are one series, ``host="other"``, showing the *lowest* limit among them
(the one worth a look: a throttled host stays visible even outside the top).
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dispatcher.endpoints.guard import EndpointGuard

ENDPOINT_CONCURRENCY_LIMIT = "callbacks_endpoint_concurrency_limit"
# Hosts with their own label value in that gauge (the busiest); the rest are "other".
LIMIT_GAUGE_TOP_HOSTS = 20


class EndpointLimitCollector(Collector):
    """The gauge's collector; it reads nothing until it ``follow``s a guard."""

    def __init__(self, top: int = LIMIT_GAUGE_TOP_HOSTS) -> None:
        self._top = top
        self._guard: EndpointGuard | None = None

    def follow(self, guard: EndpointGuard) -> None:
        self._guard = guard

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            ENDPOINT_CONCURRENCY_LIMIT,
            "Current adaptive concurrency limit per endpoint host (busiest hosts; the "
            "lowest limit of the rest as host=other).",
            labels=["host"],
        )
        hosts = sorted(self._guard.limits() if self._guard else [], key=lambda h: -h[2])
        for host, limit, _attempts in hosts[: self._top]:
            family.add_metric([host], limit)
        rest = hosts[self._top :]
        if rest:
            family.add_metric(["other"], min(limit for _host, limit, _attempts in rest))
        yield family
