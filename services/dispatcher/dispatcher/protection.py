"""Endpoint protection: an adaptive concurrency limit and a circuit breaker per host.

Why: every customer endpoint shares one process. Without a cap, a slow host would hold
every in-flight slot; without a breaker, a dead host would cost a full timeout per
callback. The cap adapts (``dispatcher.aimd``): it halves when the host answers 429 or
503 or times out and grows back on fast successes, up to ``max_per_host``.
A host that is at its limit *and* not completing anything (its oldest request
has been running for a while) takes no more waiters: further callbacks to it are handed
to the retry path at once (``host_busy``), so the in-flight budget stays with the
healthy hosts; so does a host whose limit was cut, beyond a bounded queue
(``Aimd.queue_bound``: about a second of its work). A busy host
that keeps answering at full limit keeps its queue, however long.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Literal

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from dispatcher.aimd import Aimd

BreakerState = Literal["closed", "open", "half_open"]

# A host at its cap that has finished nothing for this long is "not completing".
STALL_AFTER_S = 1.0
# Waiters a stalled host may keep, in multiples of its concurrency limit.
STALLED_WAITERS_FACTOR = 1
ENDPOINT_CONCURRENCY_LIMIT = "callbacks_endpoint_concurrency_limit"
# Hosts with their own label value in that gauge (the busiest); the rest are "other".
LIMIT_GAUGE_TOP_HOSTS = 20


class Rejected(Exception):
    """The attempt was not started; ``reason`` is ``circuit_open`` or ``host_busy``."""

    def __init__(self, reason: str, wait_s: float = 0.0) -> None:
        super().__init__(reason)
        self.reason = reason
        self.wait_s = wait_s  # host_busy: about how long the host's backlog will take


@dataclass
class Breaker:
    """Opens after ``threshold`` consecutive failures; one probe after ``open_s``."""

    threshold: int
    open_s: float
    state: BreakerState = "closed"
    failures: int = 0
    opened_at: float = 0.0
    probing: bool = False

    def admit(self, now: float) -> bool:
        if self.state == "closed":
            return True
        if self.state == "open" and now - self.opened_at >= self.open_s:
            self.state = "half_open"
        if self.state == "half_open" and not self.probing:
            self.probing = True
            return True
        return False

    def record(self, ok: bool, now: float) -> BreakerState | None:
        """Count a result; returns the new state when it changed."""
        before = self.state
        self.probing = False
        if ok:
            self.failures = 0
            self.state = "closed"
        else:
            self.failures += 1
            if self.state == "half_open" or self.failures >= self.threshold:
                self.state = "open"
                self.opened_at = now
        return self.state if self.state != before else None


@dataclass
class _Host:
    aimd: Aimd
    breaker: Breaker
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    active: int = 0
    attempts: int = 0  # ranks hosts for the limit gauge
    last_progress: float = 0.0


class EndpointGuard:
    def __init__(
        self,
        *,
        max_per_host: int,
        failure_threshold: int,
        open_s: float,
        on_transition: Callable[[str, BreakerState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max = max_per_host
        self._threshold = failure_threshold
        self._open_s = open_s
        self._hosts: dict[str, _Host] = {}
        self._clock = clock
        self._on_transition = on_transition

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = _Host(Aimd(self._max), Breaker(self._threshold, self._open_s))
            self._hosts[host] = state
        return state

    def open_count(self) -> int:
        return sum(1 for h in self._hosts.values() if h.breaker.state == "open")

    def state_of(self, host: str) -> BreakerState:
        return self._host(host).breaker.state

    def limit_of(self, host: str) -> int:
        return self._host(host).aimd.allowed

    def limits(self) -> list[tuple[str, int, int]]:
        """(host, current limit, attempts so far) of every host seen."""
        return [(h, s.aimd.allowed, s.attempts) for h, s in self._hosts.items()]

    @staticmethod
    def _stalled(state: _Host, now: float) -> bool:
        return state.active >= state.aimd.allowed and now - state.last_progress > STALL_AFTER_S

    async def acquire(self, host: str) -> bool:
        """Take one of the host's slots for one attempt (``release`` it after); raises
        Rejected instead. Returns whether this attempt is the half-open probe."""
        state = self._host(host)
        now = self._clock()
        if state.breaker.state != "closed" and not state.breaker.admit(now):
            raise Rejected("circuit_open")
        probe = state.breaker.state == "half_open"
        allowed = state.aimd.allowed
        queued = len(state.waiters)
        if not probe and (
            (queued >= allowed * STALLED_WAITERS_FACTOR and self._stalled(state, now))
            or (state.aimd.throttled and queued >= state.aimd.queue_bound())
        ):
            raise Rejected("host_busy", state.aimd.drain_s(queued + state.active))
        if state.active >= allowed or state.waiters:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            try:
                await waiter  # ``_grant`` counts the slot as ours before waking us
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._free(state)  # granted, then cancelled: hand the slot on
                else:
                    state.waiters.remove(waiter)
                if probe:
                    state.breaker.probing = False
                raise
        else:
            state.active += 1
        if not probe and state.breaker.state != "closed":
            # The breaker opened while this attempt queued: fail fast like the rest.
            self._free(state)
            raise Rejected("circuit_open")
        if state.active == 1:
            state.last_progress = self._clock()  # a host that was idle starts afresh
        state.attempts += 1
        return probe

    @staticmethod
    def _grant(state: _Host) -> None:
        """Wake waiters while the (possibly changed) limit has room, in arrival order."""
        while state.waiters and state.active < state.aimd.allowed:
            waiter = state.waiters.popleft()
            if not waiter.done():
                state.active += 1
                waiter.set_result(None)

    def _free(self, state: _Host) -> None:
        state.active -= 1
        self._grant(state)

    def release(self, host: str, probe: bool) -> None:
        state = self._hosts[host]
        state.last_progress = self._clock()
        self._free(state)
        if probe and state.breaker.probing:
            # The probe ended without a result (cancelled): let another one try.
            state.breaker.probing = False

    @asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """``acquire``/``release`` as a context manager (tests, non-hot paths)."""
        probe = await self.acquire(host)
        try:
            yield
        finally:
            self.release(host, probe)

    def record(
        self,
        host: str,
        ok: bool,
        *,
        status: int | None = None,
        timed_out: bool = False,
        latency_s: float = 0.0,
    ) -> None:
        """Feed the breaker (``ok``: the host answered like a live server) and the
        adaptive limit (the status, or a timeout, and how long the call took)."""
        state = self._host(host)
        now = self._clock()
        changed = state.breaker.record(ok, now)
        if changed is not None and self._on_transition is not None:
            self._on_transition(host, changed)
        state.aimd.observe(
            status=status,
            timed_out=timed_out,
            latency_s=latency_s,
            in_flight=state.active + 1,
            now=now,
        )
        if state.waiters:
            self._grant(state)  # the limit may have grown


class EndpointLimitCollector(Collector):
    """``callbacks_endpoint_concurrency_limit{host}`` at scrape time.

    Hosts are customers' and unbounded, so only the busiest ``top`` get their own label
    value; the rest are one series, ``host="other"``, showing the *lowest* limit among
    them (the one worth a look: a throttled host stays visible even outside the top).
    """

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
